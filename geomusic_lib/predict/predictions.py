"""The one predictions format that every model and baseline writes and evaluation reads.

`predictions.parquet` has one row per evaluated track:

| column      | meaning                                                        |
|-------------|----------------------------------------------------------------|
| `track_id`  | the track's id in `data/table.parquet`                          |
| `fold`      | CV fold of the row (-1 for a holdout test split)                |
| `y_true`    | the true class name                                            |
| `true_lat`, `true_lon` | the track's (or its station's) true coordinates, NaN if unknown |
| `p::<class>`| predicted probability of each class, in the model's class order |
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from geomusic_lib.core.fileio import atomic_write_parquet

PROBA_PREFIX = "p::"


@dataclass
class Predictions:
    track_ids: np.ndarray
    fold: np.ndarray
    y_true: np.ndarray  # class index into `classes`
    proba: np.ndarray  # (n, n_classes)
    classes: list[str]
    true_lat: np.ndarray
    true_lon: np.ndarray


def write_predictions(
    path: str | Path,
    track_ids: Sequence,
    y_true: Sequence[str],
    proba: np.ndarray,
    classes: Sequence[str],
    true_lat: Sequence[float] | None = None,
    true_lon: Sequence[float] | None = None,
    fold: Sequence[int] | None = None,
) -> Path:
    """Write probabilities and labels atomically to `path` (parquet)."""
    n = len(track_ids)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (n, len(classes)):
        raise ValueError(f"proba has shape {proba.shape}, expected ({n}, {len(classes)})")
    unknown = set(map(str, y_true)) - set(map(str, classes))
    if unknown:
        raise ValueError(f"y_true has classes not in the class list: {sorted(unknown)[:5]}")
    frame = pd.DataFrame({
        "track_id": np.asarray(track_ids).astype(str),
        "fold": np.full(n, -1) if fold is None else np.asarray(fold, dtype=int),
        "y_true": np.asarray(y_true).astype(str),
        "true_lat": np.full(n, np.nan) if true_lat is None else np.asarray(true_lat, dtype=float),
        "true_lon": np.full(n, np.nan) if true_lon is None else np.asarray(true_lon, dtype=float),
    })
    probs = pd.DataFrame(proba, columns=[f"{PROBA_PREFIX}{c}" for c in classes])
    frame = pd.concat([frame, probs], axis=1)
    return atomic_write_parquet(frame, path, index=False)


def read_predictions(path: str | Path) -> Predictions:
    """Read a `predictions.parquet` written by `write_predictions`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no predictions file. Train the model (or baseline) first.")
    frame = pd.read_parquet(path)
    prob_cols = [c for c in frame.columns if c.startswith(PROBA_PREFIX)]
    classes = [c[len(PROBA_PREFIX):] for c in prob_cols]
    index = {c: i for i, c in enumerate(classes)}
    return Predictions(
        track_ids=frame["track_id"].to_numpy(),
        fold=frame["fold"].to_numpy(),
        y_true=frame["y_true"].map(index).to_numpy(dtype=int),
        proba=frame[prob_cols].to_numpy(dtype=np.float64),
        classes=classes,
        true_lat=frame["true_lat"].to_numpy(dtype=float),
        true_lon=frame["true_lon"].to_numpy(dtype=float),
    )


class FoldPredictions:
    """Each split's test rows and probabilities, gathered fold by fold and written as one file:
    what the trainer, the baselines and the ensemble all produce."""

    def __init__(self, tracks: pd.DataFrame, classes: Sequence[str]):
        self.tracks, self.classes = tracks, list(classes)
        self.parts: list[pd.DataFrame] = []
        self.probas: list[np.ndarray] = []

    def add(self, fold: int, test_rows: np.ndarray, proba: np.ndarray) -> None:
        """The probabilities of `tracks.iloc[test_rows]` (row positions) for split `fold`."""
        self.parts.append(self.tracks.iloc[test_rows][["track_id", "label", "lat", "lon"]].assign(fold=fold))
        self.probas.append(proba)

    def write(self, path: str | Path) -> Path | None:
        """Write `predictions.parquet`; None (nothing written) when no split had test rows."""
        if not self.parts:
            return None
        rows = pd.concat(self.parts, ignore_index=True)
        return write_predictions(path, rows["track_id"], rows["label"], np.concatenate(self.probas), self.classes,
                                 rows["lat"], rows["lon"], rows["fold"])
