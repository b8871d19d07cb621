"""Geography: great-circle distances, the shipped country table (ISO codes, capital, UN M49 region,
continent), country-name matching, nearest country and class centroids on the sphere.

Sources and licences of every column: `COUNTRIES_SOURCE.md` next to this file.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)
LEVELS = ("country", "region", "continent")
CONTINENTS = ("Africa", "Asia", "Europe", "North America", "South America", "Oceania", "Antarctica")


@dataclass(frozen=True)
class CountryInfo:
    """One row of the shipped country table."""

    country: str  # canonical English short name
    iso2: str
    iso3: str
    m49: str  # UN M49 / ISO 3166 numeric code ("" for Kosovo)
    capital: str  # the place that gives lat/lon
    point: str  # "capital" or "manual" (territories without a capital in GeoNames)
    lat: float
    lon: float
    population: int
    region: str  # UN M49 sub-region (intermediate region in Sub-Saharan Africa and Latin America)
    region_m49: str
    continent: str  # 7-continent form, as Natural Earth's CONTINENT


# --- distances -----------------------------------------------------------------------------------

def great_circle_km(lat1, lon1, lat2, lon2) -> np.ndarray | float:
    """Haversine distance in km between points given in degrees (numpy broadcasting)."""
    p1, p2 = np.radians(np.asarray(lat1, dtype=float)), np.radians(np.asarray(lat2, dtype=float))
    dlon = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return float(km) if np.ndim(km) == 0 else km


def _unit_vectors(lat, lon) -> np.ndarray:
    """`(N, 3)` unit vectors of points given in degrees."""
    phi, lam = np.radians(np.asarray(lat, dtype=float)), np.radians(np.asarray(lon, dtype=float))
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


def spherical_mean(lat, lon) -> tuple[float, float]:
    """Mean position on the sphere (normalised mean of 3-D unit vectors); NaN if undefined."""
    v = _unit_vectors(lat, lon).reshape(-1, 3).mean(axis=0)
    norm = np.linalg.norm(v)
    if not np.isfinite(norm) or norm < 1e-9:
        return float("nan"), float("nan")
    x, y, z = v / norm
    return float(np.degrees(np.arcsin(np.clip(z, -1.0, 1.0)))), float(np.degrees(np.arctan2(y, x)))


# --- the shipped tables --------------------------------------------------------------------------

def _data_file(name: str):
    return resources.files("geomusic_lib.data") / name


@lru_cache(maxsize=1)
def _countries() -> pd.DataFrame:
    # keep_default_na=False: Namibia's ISO code is "NA"
    with _data_file("countries.csv").open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, keep_default_na=False, dtype={"m49": str, "region_m49": str})
    return frame.set_index("country", drop=False)


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    with _data_file("country_aliases.csv").open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, keep_default_na=False)
    return dict(zip(frame["alias"], frame["country"]))


def country_table() -> pd.DataFrame:
    """A copy of the shipped country table (one row per country or territory)."""
    return _countries().reset_index(drop=True).copy()


def name_key(name: str) -> str:
    """Matching key: no accents, case or punctuation, "&" = "and", "St" = "Saint", no leading "The"."""
    text = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    text = re.sub(r"[.'’]", "", text.casefold().replace("&", " and "))
    words = re.sub(r"[^0-9a-z]+", " ", text).split()
    words = ["saint" if w == "st" else w for w in words]
    return " ".join(words[1:] if words[:1] == ["the"] and len(words) > 1 else words)


@lru_cache(maxsize=1)
def _name_index() -> dict[str, str]:
    """Matching key → canonical name, for canonical names and aliases."""
    table = _countries()
    index = {name_key(name): name for name in table["country"]}
    for alias, country in _aliases().items():
        index.setdefault(name_key(alias), country)
    return index


@lru_cache(maxsize=1)
def _code_index() -> dict[str, str]:
    table = _countries()
    return {**dict(zip(table["iso2"], table["country"])), **dict(zip(table["iso3"], table["country"]))}


# --- name matching -------------------------------------------------------------------------------

def lookup_country(name: str, default: CountryInfo | None = None) -> CountryInfo | None:
    """`CountryInfo` for a country name, alias or upper-case ISO alpha-2/alpha-3 code; `default` if unknown."""
    if not isinstance(name, str):
        return default
    text = name.strip()
    canonical = _code_index().get(text) if text.isupper() and len(text) in (2, 3) else None
    canonical = canonical or _name_index().get(name_key(text))
    return default if canonical is None else _info(canonical)


@lru_cache(maxsize=None)
def _info(canonical: str) -> CountryInfo:
    row = _countries().loc[canonical]
    fields = {f: str(row[f]) for f in CountryInfo.__dataclass_fields__}
    return CountryInfo(**{**fields, "lat": float(row["lat"]), "lon": float(row["lon"]),
                          "population": int(row["population"])})


def country_info(name: str) -> CountryInfo:
    """`CountryInfo` for a country name or alias; `KeyError` with suggestions if unknown."""
    info = lookup_country(name)
    if info is None:
        raise KeyError(_unknown_message(name))
    return info


def normalise_country_name(name: str) -> str:
    """Canonical English short name of a country name or alias ("Türkiye" → "Turkey")."""
    return country_info(name).country


def _unknown_message(name: object) -> str:
    import difflib

    close = difflib.get_close_matches(name_key(name) if isinstance(name, str) else "", list(_name_index()), n=5)
    names = list(dict.fromkeys(_name_index()[k] for k in close))
    hint = f" Close matches: {', '.join(names)}." if names else ""
    return (f"unknown country name {name!r}.{hint} Known names and aliases are in "
            "geomusic_lib/data/countries.csv and country_aliases.csv; add an alias row there if it is a country.")


# --- public accessors ----------------------------------------------------------------------------

def country_coordinates(name: str) -> tuple[float, float]:
    """(lat, lon) of the country's representative point (its capital, see `CountryInfo.point`)."""
    info = country_info(name)
    return float(info.lat), float(info.lon)


def region_of(country: str) -> str:
    """UN M49 sub-region, e.g. "Western Africa", "South-eastern Asia"."""
    return country_info(country).region


def continent_of(country: str) -> str:
    """Continent in the 7-continent form (Africa, Asia, Europe, North America, South America, Oceania, Antarctica)."""
    return country_info(country).continent


def nearest_country(lat: float, lon: float, min_population: int = 0) -> str:
    """Country whose representative point is nearest to (lat, lon).

    `min_population` skips small states and territories (e.g. 1000 keeps Rome's coordinates from
    naming Vatican City).
    """
    table = _countries()
    table = table[table["population"] >= min_population]
    km = great_circle_km(lat, lon, table["lat"].to_numpy(), table["lon"].to_numpy())
    return str(table["country"].iloc[int(np.argmin(km))])


def class_centroids(labels, lat, lon) -> pd.DataFrame:
    """`class, lat, lon` per class (sorted): spherical mean of the tracks' coordinates, else
    the country's representative point, else NaN."""
    frame = pd.DataFrame({"class": np.asarray(labels, dtype=object), "lat": np.asarray(lat, dtype=float),
                          "lon": np.asarray(lon, dtype=float)})
    frame = frame[frame["class"].notna()]
    rows = []
    for name, group in frame.groupby("class", sort=True):
        known = group[np.isfinite(group["lat"]) & np.isfinite(group["lon"])]
        point = spherical_mean(known["lat"], known["lon"]) if len(known) else (np.nan, np.nan)
        if not np.isfinite(point[0]):
            info = lookup_country(str(name))
            point = (float(info.lat), float(info.lon)) if info else (np.nan, np.nan)
        rows.append({"class": name, "lat": point[0], "lon": point[1]})
    return pd.DataFrame(rows, columns=["class", "lat", "lon"])


def geo_soft_targets(class_lat, class_lon, tau_km: float) -> np.ndarray:
    """Haversine label smoothing (PIGEON, Haas et al. 2024): row i is the training target for true
    class i, with weight ∝ exp(-d_ij / τ) on class j (rows sum to 1). A class without coordinates
    keeps a one-hot row."""
    lat, lon = np.asarray(class_lat, dtype=float), np.asarray(class_lon, dtype=float)
    if tau_km <= 0:
        raise ValueError(f"train.geo_smoothing_km must be positive (a distance in km, e.g. 500), got {tau_km}")
    km = great_circle_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    weights = np.exp(-np.nan_to_num(km, nan=np.inf) / tau_km)
    unknown = ~(np.isfinite(lat) & np.isfinite(lon))
    weights[unknown] = 0.0
    weights[np.arange(len(lat)), np.arange(len(lat))] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)


__all__ = [
    "EARTH_RADIUS_KM", "geo_soft_targets", "LEVELS", "CONTINENTS", "CountryInfo", "great_circle_km", "spherical_mean",
    "country_table", "name_key", "lookup_country", "country_info", "normalise_country_name",
    "country_coordinates", "region_of", "continent_of", "nearest_country", "class_centroids",
]
