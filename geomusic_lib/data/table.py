"""`TrackTable`, the one in-memory shape of a labelled dataset, and the generic table source."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geomusic_lib.data.io import DataError, read_table_file, require_columns
from geomusic_lib.data.labels import drop_small_classes

BASE_COLUMNS = ["track_id", "label", "group", "lat", "lon"]


@dataclass
class TrackTable:
    """One row per track: `track_id, label, group, lat, lon` followed by the feature columns."""

    frame: pd.DataFrame
    feature_names: list[str]
    source: str
    notes: dict[str, Any] = field(default_factory=dict)
    grid_shape: tuple[int, int] | None = None

    @property
    def features(self) -> np.ndarray:
        return self.frame[self.feature_names].to_numpy(dtype=np.float32)

    @property
    def has_groups(self) -> bool:
        return bool(self.frame["group"].notna().any())

    def classes(self) -> list[str]:
        return sorted(self.frame["label"].unique())

    def label_indices(self) -> np.ndarray:
        """Each row's label as its position in `classes()` (int64)."""
        return self.frame["label"].map({c: i for i, c in enumerate(self.classes())}).to_numpy(dtype=np.int64)


def load_table(
    path: str | Path,
    label_column: str,
    feature_columns: list[str] | None = None,
    group_column: str | None = None,
    lat_column: str | None = None,
    lon_column: str | None = None,
    id_column: str | None = None,
    min_tracks_per_class: int = 1,
    encoding: str = "utf-8",
) -> TrackTable:
    """Load any CSV/parquet with feature columns and a label column (bring your own features)."""
    raw = read_table_file(path, encoding=encoding)
    optional = [group_column, lat_column, lon_column, id_column]
    require_columns(raw, [label_column, *(feature_columns or []), *[c for c in optional if c]], path)
    if raw[label_column].isna().any():
        rows = raw.index[raw[label_column].isna()][:5].tolist()
        raise DataError(
            f"{path}: column '{label_column}' has {int(raw[label_column].isna().sum())} empty label(s) "
            f"(first rows {rows}). Fill or drop those rows before training."
        )
    used = {label_column, *[c for c in optional if c]}
    names = feature_columns or [c for c in raw.columns if c not in used and pd.api.types.is_numeric_dtype(raw[c])]
    if not names:
        raise DataError(f"{path}: no numeric feature columns found. List them in data.table.feature_columns.")
    bad = [c for c in names if not pd.api.types.is_numeric_dtype(raw[c])]
    if bad:
        raise DataError(f"{path}: feature column(s) {bad} are not numeric. Convert them or leave them out of feature_columns.")
    frame = pd.DataFrame({
        "track_id": raw[id_column].astype(str) if id_column else raw.index.astype(str),
        "label": raw[label_column].astype(str).str.strip(),
        "group": raw[group_column].astype("string") if group_column else pd.Series(pd.NA, index=raw.index, dtype="string"),
        "lat": pd.to_numeric(raw[lat_column], errors="coerce") if lat_column else np.nan,
        "lon": pd.to_numeric(raw[lon_column], errors="coerce") if lon_column else np.nan,
    })
    if frame["track_id"].duplicated().any():
        dup = frame.loc[frame["track_id"].duplicated(), "track_id"].iloc[0]
        raise DataError(f"{path}: column '{id_column}' has duplicate ids (e.g. {dup!r}). Deduplicate the file first.")
    feats = raw[names].astype(np.float32)
    frame = pd.concat([frame, feats.reset_index(drop=True).set_axis(frame.index)], axis=1)
    frame = drop_small_classes(frame, min_tracks_per_class, source=str(path), column=label_column)
    return TrackTable(frame.reset_index(drop=True), list(names), source=f"table:{path}",
                      notes={"label_column": label_column, "label_note": f"labels from column '{label_column}' of {path}"})
