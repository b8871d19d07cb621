"""Decisions from class probabilities: arg-max, or the class that minimises the expected
great-circle distance to the true place (a Bayes decision under a distance loss)."""
from __future__ import annotations

import numpy as np

from geomusic_lib.data.geo import great_circle_km


def _great_circle_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    return np.asarray(great_circle_km(lat1, lon1, lat2, lon2), dtype=float)


def class_distance_matrix(class_lat: np.ndarray, class_lon: np.ndarray) -> np.ndarray:
    """`(K, K)` great-circle distances (km) between class coordinates."""
    lat = np.asarray(class_lat, dtype=float)
    lon = np.asarray(class_lon, dtype=float)
    if lat.shape != lon.shape or lat.ndim != 1:
        raise ValueError(f"class_lat and class_lon must be 1-D and the same length, got {lat.shape} and {lon.shape}")
    if not np.isfinite(lat).all() or not np.isfinite(lon).all():
        raise ValueError("the distance-aware decision needs coordinates for every class (some class lat/lon are NaN)")
    return _great_circle_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])


def expected_distance_km(proba: np.ndarray, class_lat: np.ndarray, class_lon: np.ndarray) -> np.ndarray:
    """`(N, K)`: expected distance (km) to the true class if class j is predicted, Σ_i p_i · d(c_i, c_j)."""
    proba = np.asarray(proba, dtype=float)
    dist = class_distance_matrix(class_lat, class_lon)
    if proba.ndim != 2 or proba.shape[1] != len(dist):
        raise ValueError(f"proba has shape {proba.shape}, expected (n, {len(dist)}) for {len(dist)} classes")
    return proba @ dist


def distance_aware_predict(proba: np.ndarray, class_lat: np.ndarray, class_lon: np.ndarray) -> np.ndarray:
    """Class index per row that minimises the expected great-circle distance under `proba`."""
    return expected_distance_km(proba, class_lat, class_lon).argmin(axis=1)
