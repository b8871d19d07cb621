"""The embedded default dataset: UCI "Geographical Original of Music" (CC BY 4.0)."""
from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from geomusic_lib.data.table import TrackTable

CITATION = (
    'Fang Zhou, Claire Q and Ross D. King. "Predicting the Geographical Origin of Music." '
    "ICDM 2014, pp. 1115-1120. UCI Machine Learning Repository, dataset 315, CC BY 4.0."
)
LABEL_NOTE = (
    "UCI labels are the coordinates of a capital city (33 pairs). The country names are derived "
    "by geomusic from the nearest capital; they are not part of the dataset."
)
N_STATISTICS = 4
TIMBRAL, CHROMA = 17, 12


def _dataset_file(name: str):
    return resources.files("geomusic_lib.datasets") / "uci_geo_music" / name


def uci_feature_names(chromatic: bool = True) -> list[str]:
    """Names `s<statistic>_timbre<NN>` / `s<statistic>_chroma<NN>`, in the file's row-major grid order."""
    names = []
    for stat in range(1, N_STATISTICS + 1):
        names += [f"s{stat}_timbre{d:02d}" for d in range(1, TIMBRAL + 1)]
        if chromatic:
            names += [f"s{stat}_chroma{d:02d}" for d in range(1, CHROMA + 1)]
    return names


def uci_class_names() -> pd.DataFrame:
    """The 33 coordinate classes with their derived country names."""
    with _dataset_file("classes_derived.csv").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def load_uci(chromatic: bool = True) -> TrackTable:
    """Load the 1059 tracks with 116 (or 68) features, 33 classes, and the true coordinates."""
    fname = "default_plus_chromatic_features_1059_tracks.txt" if chromatic else "default_features_1059_tracks.txt"
    with _dataset_file(fname).open("r", encoding="utf-8") as fh:
        raw = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    names = uci_feature_names(chromatic)
    lat, lon = raw[:, -2].round(2), raw[:, -1].round(2)
    classes = uci_class_names()
    lookup = {(round(a, 2), round(b, 2)): c for a, b, c in classes[["lat", "lon", "country_derived"]].itertuples(index=False)}
    labels = [lookup[(a, b)] for a, b in zip(lat, lon)]
    frame = pd.DataFrame({
        "track_id": [f"uci{i:04d}" for i in range(len(raw))],
        "label": labels,
        "group": pd.Series(pd.NA, index=range(len(raw)), dtype="string"),
        "lat": lat,
        "lon": lon,
    })
    frame = pd.concat([frame, pd.DataFrame(raw[:, :-2].astype(np.float32), columns=names)], axis=1)
    grid = (N_STATISTICS, TIMBRAL + (CHROMA if chromatic else 0))
    notes = {"label_note": LABEL_NOTE, "citation": CITATION, "licence": "CC BY 4.0",
             "grid_note": "grid = 4 summary statistics x descriptors; this axis is not time",
             "groups": "UCI has no artist information, so splits are stratified but not grouped"}
    return TrackTable(frame, names, source="uci", notes=notes, grid_shape=grid)
