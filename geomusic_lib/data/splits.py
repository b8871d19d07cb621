"""Fixed, seeded, stratified splits that keep each artist on one side (holdout or k-fold)."""
from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from geomusic_lib.data.duplicates import feature_hashes, join_identical
from geomusic_lib.data.io import DataError
from geomusic_lib.core.fileio import atomic_path
from geomusic_lib.core.params import SplitParams

logger = logging.getLogger(__name__)


@dataclass
class Split:
    """Row positions of one train/val/test partition; `fold` is -1 for a holdout split."""

    fold: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def name(self) -> str:
        """'holdout split' or 'fold <k>', for printed reports."""
        return "holdout split" if self.fold < 0 else f"fold {self.fold}"


def split_groups(frame: pd.DataFrame, identical_features: Sequence[str] = ()) -> np.ndarray:
    """Artist groups where known; a track without an artist is its own group. With
    `identical_features`, rows with identical values there join one group (`data.duplicates: group`)."""
    group = frame["group"].astype("string")
    own = "track:" + frame["track_id"].astype(str)
    groups = group.fillna(own).where(group.fillna("").str.len() > 0, own).to_numpy(dtype=str)
    if identical_features:
        groups = join_identical(groups, feature_hashes(frame, identical_features))
    return groups


def _one_fold(labels: np.ndarray, groups: np.ndarray, n_splits: int, seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """First fold of a seeded StratifiedGroupKFold: (rest, held-out) positions."""
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise DataError(
            f"column 'group': cannot make the {what} split: {n_groups} distinct artist group(s) for {n_splits} folds. "
            "Use more data, fewer folds, or drop data.table.group_column to split by track."
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        rest, held = next(splitter.split(np.zeros(len(labels)), labels, groups))
    return rest, held


def _carve_validation(rest: np.ndarray, labels: np.ndarray, groups: np.ndarray, val_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if val_share <= 0:
        return rest, np.array([], dtype=int)
    n_splits = max(2, round(1 / val_share))
    train_pos, val_pos = _one_fold(labels[rest], groups[rest], n_splits, seed + 1, "validation")
    return rest[train_pos], rest[val_pos]


def make_splits(frame: pd.DataFrame, params: SplitParams, seed: int,
                identical_features: Sequence[str] = ()) -> list[Split]:
    """Holdout (train/val/test) or k-fold splits, stratified by label and grouped by artist (and, with
    `identical_features`, by identical feature vectors: see `split_groups`)."""
    if frame.empty:
        raise DataError("no tracks to split: the dataset is empty after filtering.")
    labels = frame["label"].to_numpy(dtype=str)
    groups = split_groups(frame, identical_features)
    if params.strategy == "holdout":
        rest, test = _one_fold(labels, groups, max(2, round(1 / params.test)), seed, "test")
        train, val = _carve_validation(rest, labels, groups, params.val / (params.train + params.val), seed)
        return _with_gaps_logged(frame, [Split(-1, np.sort(train), np.sort(val), np.sort(test))])
    n_groups = len(np.unique(groups))
    if n_groups < params.folds:
        raise DataError(f"column 'group': {n_groups} distinct artist group(s) cannot fill {params.folds} folds. Lower split.folds.")
    splitter = StratifiedGroupKFold(n_splits=params.folds, shuffle=True, random_state=seed)
    splits = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        folds = list(splitter.split(np.zeros(len(labels)), labels, groups))
    for k, (rest, test) in enumerate(folds):
        train, val = _carve_validation(rest, labels, groups, params.val / (params.train + params.val), seed + k)
        splits.append(Split(k, np.sort(train), np.sort(val), np.sort(test)))
    return _with_gaps_logged(frame, splits)


def bag_splits(frame: pd.DataFrame, split: Split, folds: int, seed: int,
               identical_features: Sequence[str] = ()) -> list[Split]:
    """The members of a bag (k-fold bagging inside one split): the split's training and validation
    rows cut into `folds` stratified folds, grouped as the split is (`split_groups`). Member j trains on
    the other folds, early-stops on fold j (its out-of-fold rows) and predicts the split's test rows.
    With `folds: 1` the one member is the split itself (its own validation rows)."""
    if folds <= 1:
        return [split]
    rest = np.sort(np.concatenate([split.train, split.val]).astype(int))
    labels = frame["label"].to_numpy(dtype=str)[rest]
    groups = split_groups(frame, identical_features)[rest]
    n_groups = len(np.unique(groups))
    if n_groups < folds:
        raise DataError(f"column 'group': {n_groups} artist group(s) in the training rows of the {split.name} cannot "
                        f"fill {folds} bagging folds. Lower train.bagging.folds.")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + 7919 * (split.fold + 1))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        parts = list(splitter.split(np.zeros(len(rest)), labels, groups))
    return [Split(split.fold, np.sort(rest[train]), np.sort(rest[held]), split.test) for train, held in parts]


def _with_gaps_logged(frame: pd.DataFrame, splits: list[Split]) -> list[Split]:
    for note in split_gaps(frame, splits):
        logger.warning(note)
    return splits


def split_gaps(frame: pd.DataFrame, splits: list[Split]) -> list[str]:
    """One note per split part that lacks a class (its metrics would be silently absent there)."""
    labels = frame["label"].to_numpy(dtype=str)
    classes = set(labels)
    notes = []
    for split in splits:
        for part in ("train", "val", "test"):
            rows = getattr(split, part)
            if part == "val" and len(rows) == 0:
                continue  # no validation split at all (split.val: 0)
            missing = sorted(classes - set(labels[rows]))
            if missing:
                shown = ", ".join(repr(c) for c in missing[:10]) + (" …" if len(missing) > 10 else "")
                notes.append(f"{split.name}: {len(missing)} class(es) have no {part} tracks: {shown} "
                             "(too few tracks or artists; raise min_tracks_per_class to drop such classes).")
    return notes


def save_splits(splits: list[Split], frame: pd.DataFrame, path: str | Path) -> Path:
    """Store splits by track id, so they survive rows dropped later (e.g. tracks without features)."""
    ids = frame["track_id"].astype(str).to_numpy()
    payload = [{"fold": s.fold, **{part: ids[getattr(s, part)].tolist() for part in ("train", "val", "test")}} for s in splits]
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload), encoding="utf-8")
    return path


def load_splits(path: str | Path, frame: pd.DataFrame) -> list[Split]:
    """Read splits saved by `save_splits` as positions into `frame` (ids not in `frame` are dropped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: splits file not found. Run the data-preparation step (01_data_prep) first.")
    position = {tid: i for i, tid in enumerate(frame["track_id"].astype(str))}
    splits = []
    for item in json.loads(path.read_text(encoding="utf-8")):
        parts = {p: np.array(sorted(position[t] for t in item[p] if t in position), dtype=int) for p in ("train", "val", "test")}
        splits.append(Split(int(item["fold"]), parts["train"], parts["val"], parts["test"]))
    return splits
