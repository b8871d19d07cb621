"""`TrackTable`, the one in-memory shape of a labelled dataset, and the generic table source."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geomusic_lib.data.io import DataError, read_table_file, require_columns
from geomusic_lib.core.params import TABLE_DOCS
from geomusic_lib.data.labels import filter_small_classes

logger = logging.getLogger(__name__)

BASE_COLUMNS = ["track_id", "label", "group", "lat", "lon"]


#: columns that group a table's split by default when `data.table.group_column` is unset (case-insensitive)
ARTIST_LIKE_COLUMNS = ("artist", "artists", "artist_id", "artist_name", "performer", "composer")


def choose_group_column(raw: pd.DataFrame, group_column: str | None) -> tuple[str | None, str]:
    """The column whose values stay on one side of every split, and a sentence saying so: the one named in
    `data.table.group_column`, else the first artist-like column; `none` opts out."""
    if group_column is not None and group_column.strip().lower() == "none":
        return None, "The split is not grouped (data.table.group_column: none): one artist can be on both sides."
    if group_column is not None:
        return group_column, f"The split is grouped by column '{group_column}' (data.table.group_column)."
    by_name = {str(c).lower(): c for c in raw.columns}
    found = next((by_name[name] for name in ARTIST_LIKE_COLUMNS if name in by_name), None)
    if found is None:
        return None, ("The split is not grouped: the table has no artist-like column "
                      f"({', '.join(ARTIST_LIKE_COLUMNS)}); name one in data.table.group_column.")
    return str(found), (f"The split is grouped by column '{found}', found by its name (data.table.group_column "
                        "unset; set it to another column, or to none).")


def _require_keyed_columns(raw: pd.DataFrame, path: str | Path, keys: dict[str, str | None]) -> None:
    """Every column a `data.table.<key>` names must be in the file; the message names the key."""
    missing = {key: column for key, column in keys.items() if column and column not in raw.columns}
    if missing:
        named = ", ".join(f"data.table.{key}: {column!r}" for key, column in missing.items())
        shown = ", ".join(map(str, list(raw.columns)[:12])) + (" …" if raw.shape[1] > 12 else "")
        raise DataError(f"{path}: no column for {named}. Found: {shown}. Set the key to one of these columns "
                        f"({TABLE_DOCS}).")


def identical_column_groups(features: pd.DataFrame) -> list[list[str]]:
    """Groups of two or more columns whose values are identical on every row (NaN equals NaN). The one
    finder of copied columns: the UCI loader's chroma checks, 02's findings and the book's facts use it."""
    keys = features.T.apply(lambda column: hash(column.to_numpy().tobytes()), axis=1)
    groups = [list(cols) for _, cols in features.columns.to_series().groupby(keys.to_numpy())]
    return [g for g in groups if len(g) > 1 and all(features[g[0]].equals(features[c]) for c in g[1:])]


def distinct_column_count(features: pd.DataFrame) -> int:
    """How many columns remain when each group of identical copies counts once."""
    return features.shape[1] - sum(len(g) - 1 for g in identical_column_groups(features))


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
    sep: str = ",",
    decimal: str = ".",
) -> TrackTable:
    """Load any CSV/parquet with feature columns and a label column (bring your own features).

    Without `feature_columns`, every numeric column is a feature and text columns are skipped;
    a mostly numeric column with stray text or decimal commas is an error, never dropped.
    Everything skipped or dropped is listed in `notes` (and logged).
    """
    raw = read_table_file(path, encoding=encoding, sep=sep, decimal=decimal)
    group_column, group_note = choose_group_column(raw, group_column)
    optional = [group_column, lat_column, lon_column, id_column]
    _require_keyed_columns(raw, path, {"label_column": label_column, "group_column": group_column,
                                       "lat_column": lat_column, "lon_column": lon_column, "id_column": id_column})
    require_columns(raw, feature_columns or [], path, "List only columns of the file in data.table.feature_columns.")
    labels = _clean_labels(raw[label_column], path, label_column)
    notes: dict[str, Any] = {"label_column": label_column, "group_column": group_column, "group_note": group_note,
                             "grouped_by": f"column '{group_column}'" if group_column else None,
                             "label_note": f"labels from column '{label_column}' of {path}"}
    used = {label_column, *[c for c in optional if c]}
    if feature_columns:
        names = list(feature_columns)
        _check_listed_columns(raw, names, path)
    else:
        names, skipped = detect_feature_columns(raw, used, path)
        if skipped:
            notes["skipped_columns"] = (f"{path}: {len(skipped)} text column(s) are not features and were skipped: "
                                        f"{', '.join(skipped)}. List data.table.feature_columns to choose yourself.")
    feats = raw[names].apply(pd.to_numeric, errors="coerce").astype(np.float32)
    keep, dropped = _rows_with_features(feats, path)
    if dropped:
        notes["dropped_rows"] = dropped
    frame = pd.DataFrame({
        "track_id": raw[id_column].astype(str) if id_column else raw.index.astype(str),
        "label": labels,
        "group": raw[group_column].astype("string") if group_column else pd.Series(pd.NA, index=raw.index, dtype="string"),
        "lat": pd.to_numeric(raw[lat_column], errors="coerce") if lat_column else np.nan,
        "lon": pd.to_numeric(raw[lon_column], errors="coerce") if lon_column else np.nan,
    })
    if frame["track_id"].duplicated().any():
        dup = frame.loc[frame["track_id"].duplicated(), "track_id"].iloc[0]
        raise DataError(f"{path}: column '{id_column}' has duplicate ids (e.g. {dup!r}). Deduplicate the file first.")
    frame = pd.concat([frame, feats], axis=1)[keep].reset_index(drop=True)
    frame, small = filter_small_classes(frame, min_tracks_per_class, source=str(path), column=label_column)
    if small:
        notes["dropped_classes"] = small
    for key in ("skipped_columns", "dropped_rows", "dropped_classes"):
        if key in notes:
            logger.warning(notes[key])
    return TrackTable(frame, names, source=f"table:{path}", notes=notes)


def _clean_labels(column: pd.Series, path: str | Path, name: str) -> pd.Series:
    """Labels stripped of surrounding spaces; an empty or blank label is an error naming its rows."""
    labels = column.astype("string").str.strip()
    empty = labels.isna() | (labels == "")
    if empty.any():
        rows = column.index[empty][:5].tolist()
        raise DataError(
            f"{path}: column '{name}' has {int(empty.sum())} empty label(s) (first rows {rows}). Blank or "
            "whitespace-only labels count as empty: fill or drop those rows before training."
        )
    return labels.astype(str)


def detect_feature_columns(raw: pd.DataFrame, used: set[str], path: str | Path) -> tuple[list[str], list[str]]:
    """(numeric feature columns, skipped text or empty columns); a mostly numeric column that fails to parse
    is an error."""
    names, skipped = [], []
    for column in (c for c in raw.columns if c not in used):
        kind = _column_kind(raw[column], path, column)
        if kind == "numeric":
            names.append(column)
        else:
            skipped.append(str(column) if kind == "text" else f"{column} (empty)")
    if not names:
        raise DataError(f"{path}: no numeric feature columns found. List them in data.table.feature_columns.")
    return names, skipped


def _check_listed_columns(raw: pd.DataFrame, names: list[str], path: str | Path) -> None:
    """Listed feature columns must be numeric; say which cell is not."""
    for column in names:
        if _column_kind(raw[column], path, column) == "text":
            cells = raw[column].dropna().astype(str)
            raise DataError(f"{path}: feature column '{column}' is text, not numbers (e.g. row {cells.index[0]}: "
                            f"{cells.iloc[0]!r}). Leave it out of data.table.feature_columns.")


def _column_kind(values: pd.Series, path: str | Path, column: object) -> str:
    """'numeric', 'text' (mostly not numbers) or 'empty'; raise for numbers with stray text or decimal commas."""
    cells = values.dropna().astype(str).str.strip()
    cells = cells[cells != ""]
    if cells.empty:
        return "empty"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    parsed = pd.to_numeric(cells, errors="coerce")
    if parsed.notna().all():
        return "numeric"
    with_points = pd.to_numeric(cells.str.replace(",", ".", regex=False), errors="coerce")
    if with_points.notna().mean() < 0.5:
        return "text"
    bad = cells[parsed.isna()]
    first = f"row {bad.index[0]}: {bad.iloc[0]!r}"
    if with_points[parsed.isna()].notna().all():
        raise DataError(f"{path}: column '{column}' uses decimal commas ({len(bad)} cell(s), e.g. {first}). Set "
                        "data.table.decimal: \",\" (with data.table.sep: \";\" if fields are separated by "
                        "semicolons), or save the file with decimal points.")
    raise DataError(f"{path}: column '{column}' is numeric except {len(bad)} cell(s) that are not numbers "
                    f"(e.g. {first}). Fix or empty those cells, or list the feature columns in "
                    "data.table.feature_columns without it.")


def _rows_with_features(feats: pd.DataFrame, path: str | Path) -> tuple[pd.Series, str | None]:
    """Rows whose features are all present; infinite values are an error, empty cells drop the row (with a note)."""
    infinite = np.isinf(feats.to_numpy())
    if infinite.any():
        row, col = np.argwhere(infinite)[0]
        raise DataError(f"{path}: feature column '{feats.columns[col]}' has {int(infinite[:, col].sum())} infinite "
                        f"value(s) (e.g. row {feats.index[row]}). Fix or empty those cells.")
    empty = feats.isna()
    keep = ~empty.any(axis=1)
    if keep.all():
        return keep, None
    worst = empty.sum().idxmax()
    if keep.sum() < 0.5 * len(feats):
        raise DataError(f"{path}: {int((~keep).sum())} of {len(feats)} rows have empty feature cells (column "
                        f"'{worst}' alone has {int(empty[worst].sum())}). Fill them, or leave such columns out of "
                        "data.table.feature_columns.")
    rows = feats.index[~keep][:5].tolist()
    cols = [str(c) for c in empty.columns[empty.any()]][:5]
    return keep, (f"{path}: dropped {int((~keep).sum())} row(s) with empty feature cells (first rows {rows}; "
                  f"columns {cols}). Fill those cells to keep the tracks.")
