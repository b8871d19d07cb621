"""Turning what a user hands the predictor into raw model input: files (CSV, parquet, npy),
tables matched to the checkpoint's feature names by column, and frame sequences.

Every problem becomes a `PredictionError` that names the file or column and the fix.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from geomusic_lib.data.frames import FRAMES_DIR, frames_for_tracks, load_frames
from geomusic_lib.data.io import DataError
from geomusic_lib.data.table import identical_column_groups
from geomusic_lib.data.views import check_finite


class PredictionError(ValueError):
    """The input cannot be predicted with this checkpoint; the message says why and what to do."""


def read_features(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame | np.ndarray:
    """Read a CSV, parquet or npy file of features (no other checks: see `feature_matrix`)."""
    path = Path(path)
    if not path.is_file():
        raise PredictionError(f"{path}: input file not found.")
    if path.stat().st_size == 0:
        raise PredictionError(f"{path}: the input file is empty (0 bytes); export the features again.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        if suffix in {".csv", ".txt", ".tsv"}:
            return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", encoding=encoding)
    except pd.errors.EmptyDataError:
        raise PredictionError(f"{path}: the input file has no header and no rows.") from None
    except UnicodeDecodeError as err:
        raise PredictionError(f"{path}: not valid {encoding} text (byte {err.start}); pass its encoding, "
                              "e.g. --encoding latin-1, or re-save it as UTF-8.") from None
    except (ValueError, OSError) as err:
        raise PredictionError(f"{path}: cannot read it as {suffix[1:]} ({err}).") from None
    raise PredictionError(f"{path}: unknown input type {suffix!r}; use .csv, .parquet or .npy")


def names_preview(names: Sequence[str], n: int = 8) -> str:
    names = list(names)
    return ", ".join(map(str, names[:n])) + (f", … ({len(names)} in all)" if len(names) > n else "")


def map_chroma_copies(data: pd.DataFrame, feature_names: Sequence[str], what: str) -> pd.DataFrame:
    """A table with the UCI file's twelve copies `s<k>_chroma01…12`, for a checkpoint that reads the one
    column `s<k>_chroma` the loader collapsed them into: the copies must be identical, and become that column."""
    for name in [f for f in feature_names if re.fullmatch(r"s\d+_chroma", f) and f not in data.columns]:
        copies = [c for c in data.columns if re.fullmatch(rf"{name}\d\d", c)]
        if not copies:
            continue
        same = next((g for g in identical_column_groups(data[copies]) if copies[0] in g), [copies[0]])
        differ = [c for c in copies if c not in same]
        if differ:
            raise PredictionError(
                f"{what}: this checkpoint reads one column {name} (the 12 identical chroma copies of the UCI file, "
                f"collapsed), but the input's {', '.join(differ[:3])} differ from {copies[0]}. Rename the column "
                f"that holds the value to {name} and drop the other {len(copies) - 1}, or use a checkpoint trained "
                "with data.uci.collapse_chroma: false.")
        data = data.assign(**{name: data[copies[0]]})
    return data


def id_column_of(columns: Sequence[str], feature_names: Sequence[str], id_column: str | None, what: str) -> str | None:
    """The column whose values name each output row: `id_column` (`--id-column`) if given, else
    `track_id` if present, else the first column that is neither a feature nor a chroma copy of one."""
    if id_column is not None:
        if id_column not in columns:
            raise PredictionError(f"{what}: --id-column {id_column!r} is not a column of the input "
                                  f"({names_preview(columns, 6)}); name one of them.")
        return id_column
    if "track_id" in columns:
        return "track_id"
    features = set(feature_names)
    copies = re.compile(r"(s\d+_chroma)\d\d")
    return next((c for c in columns if c not in features and not (
        (m := copies.fullmatch(c)) and m.group(1) in features)), None)


def _table_matrix(data: pd.DataFrame, feature_names: Sequence[str], what: str,
                  id_column: str | None = None) -> tuple[np.ndarray, pd.Series | None]:
    """The named feature columns of a table, in checkpoint order, and its id column (see `id_column_of`)."""
    if len(data) == 0:
        raise PredictionError(f"{what}: no rows to predict.")
    data = data.set_axis([str(c) for c in data.columns], axis=1)
    id_name = id_column_of(list(data.columns), feature_names, id_column, what)
    data = map_chroma_copies(data, feature_names, what)
    columns = list(data.columns)
    missing = [f for f in feature_names if f not in columns]
    if len(missing) == len(feature_names):
        raise PredictionError(
            f"{what}: none of the {len(feature_names)} features of this checkpoint are among the input's columns "
            f"({names_preview(columns, 5)}). The checkpoint was trained on another feature set "
            f"({names_preview(feature_names, 5)}). Use a checkpoint trained on these features, or save the matrix "
            "as .npy in the training order.")
    if missing:
        raise PredictionError(f"{what}: {len(missing)} feature column(s) missing: {missing}. "
                              "Columns are matched by name; extract the same features as the training run.")
    frame = data[list(feature_names)]
    ids = data[id_name].astype(str).reset_index(drop=True) if id_name else None
    non_numeric = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise PredictionError(f"{what}: feature column(s) {non_numeric[:8]} are not numeric"
                              f"{_first_text_cell(frame[non_numeric[0]], ids)}. Fix or drop that cell.")
    return frame.to_numpy(dtype=np.float64), ids


def _first_text_cell(column: pd.Series, track_ids: pd.Series | None) -> str:
    """` (first: row 3, track t3, value 'n/a' in <column>)` for the first cell that is not a number."""
    values = column.reset_index(drop=True)
    bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
    if bad.empty:
        return ""
    row = int(bad.index[0])
    track = f", track {track_ids[row]}" if track_ids is not None else ""
    return f" (first: row {row}{track}, value {bad.iloc[0]!r} in {column.name})"


def _array_matrix(data: Any, feature_names: Sequence[str], model_name: str, what: str) -> np.ndarray:
    """A bare matrix that must hold exactly the checkpoint's features, in training order."""
    n = len(feature_names)
    x = np.asarray(data)
    if x.dtype == object or not np.issubdtype(x.dtype, np.number):
        raise PredictionError(f"{what}: expected a numeric matrix, got dtype {x.dtype}.")
    if x.ndim == 1 and x.shape[0] == n:
        x = x[None, :]
    if x.ndim != 2:
        raise PredictionError(f"{what}: expected a 2-D matrix (tracks × {n} features), got shape {x.shape}.")
    if x.shape[0] == 0:
        raise PredictionError(f"{what}: no rows to predict.")
    if x.shape[1] != n:
        raise PredictionError(
            f"{what}: {x.shape[1]} features per track, but model {model_name!r} was trained on {n} "
            f"({names_preview(feature_names, 5)}). A matrix must hold exactly those features in that order; "
            "a CSV or parquet with named columns is matched by name.")
    return x.astype(np.float64)


def feature_matrix(data: Any, feature_names: Sequence[str], model_name: str, what: str = "input",
                   encoding: str = "utf-8", id_column: str | None = None) -> tuple[np.ndarray, pd.Series | None]:
    """Raw features `(N, F)` in the checkpoint's order, and the rows' ids (a Series named after
    their column, see `id_column_of`) if a table has them. `data`: a path, a DataFrame (matched by
    column name) or a matrix."""
    if isinstance(data, (str, Path)):
        what, data = str(data), read_features(data, encoding)
    if isinstance(data, pd.DataFrame):
        x, ids = _table_matrix(data, feature_names, what, id_column)
    elif id_column is not None:
        raise PredictionError(f"{what}: --id-column needs a CSV or parquet input with named columns, not a matrix.")
    else:
        x, ids = _array_matrix(data, feature_names, model_name, what), None
    try:
        check_finite(x, what, names=feature_names, row_ids=None if ids is None else ids.to_numpy(),
                     fix="Impute or drop those tracks first.")
    except DataError as err:
        raise PredictionError(str(err)) from None
    return x, ids


def _load_frame_folder(folder: Path, model_name: str) -> dict[str, np.ndarray]:
    try:
        return load_frames(folder.parent if folder.name == FRAMES_DIR else folder)
    except DataError as err:
        raise PredictionError(f"model {model_name!r} reads frame sequences: {err}") from None


def frame_sequences(data: Any, n_channels: int, model_name: str,
                    what: str = "input") -> tuple[list[np.ndarray], np.ndarray | None]:
    """Raw frame sequences (frames × channels, one per track) for a `view: frames` model, and the
    track ids when known. `data`: a feature folder written by the audio or spotify source (or its
    `frames/` subfolder), a mapping track_id → array, or a list of arrays."""
    if isinstance(data, (str, Path)):
        what, data = str(data), _load_frame_folder(Path(data), model_name)
    if isinstance(data, pd.DataFrame) or (isinstance(data, np.ndarray) and data.ndim == 2):
        raise PredictionError(f"{what}: model {model_name!r} reads frame sequences (view 'frames'), not one "
                              "feature row per track. Pass the feature folder the audio or spotify source wrote.")
    track_ids = None
    if isinstance(data, Mapping):
        track_ids = np.asarray([str(t) for t in data], dtype=object)
        data = list(data.values())
    sequences = [np.asarray(f) for f in data]
    if not sequences:
        raise PredictionError(f"{what}: no tracks to predict.")
    for i, f in enumerate(sequences):
        name = track_ids[i] if track_ids is not None else f"#{i}"
        if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] != n_channels:
            raise PredictionError(
                f"{what}: track {name}: expected frames × {n_channels} channels, got shape {f.shape}. "
                "Extract the frames with the same source and settings as the training run"
                + (" (note frames gained 6 viewpoint-token channels in geomusic 0.2: retrain a checkpoint made "
                   "before)" if f.ndim == 2 and f.shape[1] == n_channels + 6 else "") + ".")
        if not np.issubdtype(f.dtype, np.number) or not np.isfinite(f).all():
            raise PredictionError(f"{what}: track {name}: frames with NaN, infinite or non-numeric values.")
    return [f.astype(np.float64) for f in sequences], track_ids


def run_frames(rows: pd.DataFrame, features_dir: str | Path, model_name: str) -> dict[str, np.ndarray]:
    """The stored frame sequences of these rows of a run's track table, by track id."""
    frames = frames_for_tracks(rows["track_id"], features_dir)
    if frames is None:
        raise PredictionError(f"{features_dir}: no frames for frames model {model_name!r}; "
                              "rerun the feature stage (02) of this run")
    return dict(zip(rows["track_id"].astype(str), frames))
