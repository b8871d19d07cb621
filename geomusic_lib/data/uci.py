"""The embedded default dataset: UCI "Geographical Original of Music" (CC BY 4.0)."""
from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from geomusic_lib.data.io import DataError
from geomusic_lib.data.table import TrackTable, distinct_column_count, identical_column_groups

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
def chroma_note(file_columns: np.ndarray, collapsed: bool) -> str:
    """What the file's chroma columns are, counted from the file, and what the loader did with them."""
    chroma = file_columns[:, [stat * (TIMBRAL + CHROMA) + TIMBRAL + d for stat in range(N_STATISTICS)
                              for d in range(CHROMA)]]
    distinct, distinct_chroma = (distinct_column_count(pd.DataFrame(m)) for m in (file_columns, chroma))
    what = (f"In the UCI file the {CHROMA} chroma columns of each statistic hold {distinct_chroma // N_STATISTICS} "
            f"distinct value(s) ({chroma.shape[1]} columns, {distinct_chroma} distinct), so its "
            f"{file_columns.shape[1]} columns hold {distinct} distinct values (see the book's features page). ")
    return what + ("Each statistic's copies are collapsed into one column s<k>_chroma (data.uci.collapse_chroma: true)."
                   if collapsed else f"All {file_columns.shape[1]} columns are kept (data.uci.collapse_chroma: false).")


def _dataset_file(name: str):
    return resources.files("geomusic_lib.data") / "uci_geo_music" / name


def uci_feature_names(chromatic: bool = True, collapse_chroma: bool = False) -> list[str]:
    """Names `s<statistic>_timbre<NN>` / `s<statistic>_chroma<NN>` in the file's row-major grid order;
    with `collapse_chroma`, one `s<statistic>_chroma` per statistic instead of twelve."""
    names = []
    for stat in range(1, N_STATISTICS + 1):
        names += [f"s{stat}_timbre{d:02d}" for d in range(1, TIMBRAL + 1)]
        if chromatic and collapse_chroma:
            names.append(f"s{stat}_chroma")
        elif chromatic:
            names += [f"s{stat}_chroma{d:02d}" for d in range(1, CHROMA + 1)]
    return names


def collapse_chroma_copies(features: pd.DataFrame, source: str = "the UCI file") -> pd.DataFrame:
    """Replace each statistic's 12 chroma columns by one `s<k>_chroma`, after checking they are identical.

    Raises a DataError naming the columns that differ (then keep them with
    `data.uci.collapse_chroma: false`): collapsing distinct pitch classes would lose information.
    """
    out = {}
    for stat in range(1, N_STATISTICS + 1):
        out.update({f"s{stat}_timbre{d:02d}": features[f"s{stat}_timbre{d:02d}"] for d in range(1, TIMBRAL + 1)})
        copies = [f"s{stat}_chroma{d:02d}" for d in range(1, CHROMA + 1)]
        first = next((g for g in identical_column_groups(features[copies]) if copies[0] in g), [copies[0]])
        differ = [c for c in copies[1:] if c not in first]
        if differ:
            raise DataError(f"{source}: the chroma columns of statistic {stat} are not identical copies "
                            f"({', '.join(differ[:4])}{' ...' if len(differ) > 4 else ''} differ from {copies[0]}), "
                            "so they cannot be collapsed into one column. Set data.uci.collapse_chroma: false "
                            "to keep all 12.")
        out[f"s{stat}_chroma"] = features[copies[0]]
    return pd.DataFrame(out)


def uci_class_names() -> pd.DataFrame:
    """The 33 coordinate classes with their derived country names."""
    with _dataset_file("classes_derived.csv").open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def load_uci(chromatic: bool = True, collapse_chroma: bool = True) -> TrackTable:
    """Load the 1059 tracks with 116 (or 68) features, 33 classes, and the true coordinates.

    `collapse_chroma` (params `data.uci.collapse_chroma`) keeps one column per statistic of the 12
    identical chroma copies: 72 features on a 4 x 18 grid; False keeps the file's 116 (4 x 29).
    """
    fname = "default_plus_chromatic_features_1059_tracks.txt" if chromatic else "default_features_1059_tracks.txt"
    with _dataset_file(fname).open("r", encoding="utf-8") as fh:
        raw = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    names = uci_feature_names(chromatic)
    features = pd.DataFrame(raw[:, :-2].astype(np.float32), columns=names)
    if chromatic and collapse_chroma:
        features = collapse_chroma_copies(features, fname)
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
    frame = pd.concat([frame, features], axis=1)
    grid = (N_STATISTICS, len(features.columns) // N_STATISTICS)
    notes = {"label_note": LABEL_NOTE, "citation": CITATION, "licence": "CC BY 4.0",
             "grid_note": "grid = 4 summary statistics x descriptors; this axis is not time",
             "groups": "UCI has no artist information, so splits are stratified but not grouped"}
    if chromatic:
        notes["chroma_note"] = chroma_note(raw[:, :-2], collapse_chroma)
    return TrackTable(frame, list(features.columns), source="uci", notes=notes, grid_shape=grid)
