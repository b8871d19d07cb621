"""Fixed, seeded, stratified splits that keep each artist on one side (holdout or k-fold).

Tables with fewer than `FAST_SPLIT_MIN_GROUPS` groups (UCI, folk, spotify) are split by sklearn's
StratifiedGroupKFold, as before; larger ones (MIRAGE: ~99K artists at 1M events) by `assign_groups`,
a vectorised stratified assignment of whole groups (no Python loop over groups).
"""
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

FAST_SPLIT_MIN_GROUPS = 20_000  # at least this many groups: `assign_groups`; fewer: sklearn's StratifiedGroupKFold
SPLIT_TURNS = 32  # seeded turns of each class's circle that `assign_groups` tries


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
    `identical_features`, by identical feature vectors: see `split_groups`). With at least
    `FAST_SPLIT_MIN_GROUPS` groups the vectorised `fast_splits`, else sklearn's StratifiedGroupKFold."""
    if frame.empty:
        raise DataError("no tracks to split: the dataset is empty after filtering.")
    labels = frame["label"].to_numpy(dtype=str)
    groups = split_groups(frame, identical_features)
    codes, names = pd.factorize(groups)
    if len(names) >= FAST_SPLIT_MIN_GROUPS:
        return with_gaps_logged(frame, fast_splits(labels, codes, params, seed))
    if params.strategy == "holdout":
        rest, test = _one_fold(labels, groups, max(2, round(1 / params.test)), seed, "test")
        train, val = _carve_validation(rest, labels, groups, params.val / (params.train + params.val), seed)
        return with_gaps_logged(frame, [Split(-1, np.sort(train), np.sort(val), np.sort(test))])
    n_groups = len(names)
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
    return with_gaps_logged(frame, splits)


@dataclass
class GroupTable:
    """Per group (codes 0..G-1): its dominant class (most of its rows; a tie goes to the lower code) and
    its rows; per (group, class) pair present: that class's rows in the group."""

    dominant: np.ndarray
    size: np.ndarray
    pair_group: np.ndarray
    pair_class: np.ndarray
    pair_rows: np.ndarray
    n_classes: int

    def subset(self, keep: np.ndarray) -> "GroupTable":
        """The groups where `keep` (a boolean per group) is true, renumbered 0..k-1."""
        renumber, inside = np.cumsum(keep) - 1, keep[self.pair_group]
        return GroupTable(self.dominant[keep], self.size[keep], renumber[self.pair_group[inside]],
                          self.pair_class[inside], self.pair_rows[inside], self.n_classes)


def group_table(labels: np.ndarray, groups: np.ndarray) -> GroupTable:
    """The `GroupTable` of integer codes per row (labels 0..C-1, groups 0..G-1)."""
    n_groups, n_classes = int(groups.max()) + 1, int(labels.max()) + 1
    pairs, counts = np.unique(groups.astype(np.int64) * n_classes + labels, return_counts=True)
    pair_group, pair_class = pairs // n_classes, pairs % n_classes
    order = np.lexsort((pair_class, -counts, pair_group))  # per group: most rows first, then the lower code
    first = order[np.r_[True, pair_group[order][1:] != pair_group[order][:-1]]]
    dominant = np.zeros(n_groups, dtype=np.int64)
    dominant[pair_group[first]] = pair_class[first]
    return GroupTable(dominant, np.bincount(groups, minlength=n_groups), pair_group, pair_class, counts, n_classes)


def assign_groups(table: GroupTable, fractions: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """The part (0..len(fractions)-1) of each group: stratified systematic sampling by group size.

    The groups of each dominant class lie in a seeded random order along a circle whose circumference
    is their rows; the circle is turned and cut into arcs of the parts' fractions, and a group goes to
    the arc that holds the midpoint of its rows, so a part holds its share of the class's rows to within
    the groups cut by its arc's two ends. Groups larger than half the smallest arc go first, on a circle
    of their own; the others then fill what each part still lacks (arcs in proportion to it), so a big
    group's part is not also given its share of the small ones, nor the parts under it starved. Of
    `SPLIT_TURNS` seeded turns per class, `_choose_turns` keeps the ones that bring every class's rows
    (those in other classes' groups too) closest to their shares. Vectorised: sorts, cumulative sums,
    searchsorted and bincounts; loops only over classes.
    """
    n_groups, n_classes, n_parts = len(table.size), table.n_classes, len(fractions)
    weights = np.asarray(fractions, dtype=np.float64) / np.sum(fractions)
    order = np.lexsort((rng.random(n_groups), table.dominant))  # by class, random within a class
    turns = rng.random((2, n_classes, SPLIT_TURNS))
    total = np.bincount(table.dominant, weights=table.size, minlength=n_classes)
    big = table.size > weights[weights > 0].min() * total[table.dominant] / 2
    parts = np.zeros((n_groups, SPLIT_TURNS), dtype=np.int64)
    edges = np.broadcast_to(np.cumsum(weights)[:-1], (n_classes, SPLIT_TURNS, n_parts - 1))
    first = order[big[order]]
    parts[first] = _on_circles(table, first, edges, turns[0])
    cell = (table.dominant[first, None] * SPLIT_TURNS + np.arange(SPLIT_TURNS)) * n_parts + parts[first]
    held = np.bincount(cell.ravel(), weights=np.repeat(table.size[first], SPLIT_TURNS).astype(np.float64),
                       minlength=n_classes * SPLIT_TURNS * n_parts).reshape(n_classes, SPLIT_TURNS, n_parts)
    lack = np.maximum(total[:, None, None] * weights - held, 0)
    lack = np.where(lack.sum(axis=2, keepdims=True) > 0, lack, weights)  # (nothing lacking: the fractions)
    rest = order[~big[order]]
    parts[rest] = _on_circles(table, rest, np.cumsum(lack / lack.sum(axis=2, keepdims=True), axis=2)[..., :-1],
                              turns[1])
    choice = _choose_turns(table, parts, weights)
    return parts[np.arange(n_groups), choice[table.dominant]]


def _on_circles(table: GroupTable, groups: np.ndarray, edges: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """Parts (group × turn) of `groups` (sorted by class) on each class's circle: the arc, between
    `edges` (class × turn × cut, fractions of the circle), that holds the group's turned midpoint."""
    cls, mass = table.dominant[groups], table.size[groups].astype(np.float64)
    total = np.bincount(cls, weights=mass, minlength=table.n_classes)
    start = np.cumsum(total) - total  # rows of the classes before each class, in sorted order
    midpoint = (np.cumsum(mass) - mass / 2 - start[cls]) / np.maximum(total[cls], 1)
    cell = cls[:, None] * SPLIT_TURNS + np.arange(SPLIT_TURNS)  # one (class, turn) per unit of 2
    at = 2 * cell + (midpoint[:, None] + turns[cls]) % 1.0
    cuts = (2 * np.arange(edges.shape[0] * SPLIT_TURNS)[:, None] + edges.reshape(-1, edges.shape[2])).ravel()
    return np.searchsorted(cuts, at, side="right") - cell * edges.shape[2]


def _choose_turns(table: GroupTable, parts: np.ndarray, weights: np.ndarray, sweeps: int = 2) -> np.ndarray:
    """Per class, which of its turns (`parts`: group × turn) to keep: first the one closest to the
    fractions for the class's own rows, then `sweeps` rounds of coordinate descent, class by class, on
    the sum over classes and parts of (rows held - fraction × class rows)² / fraction²."""
    n_classes, n_parts, used = table.n_classes, len(weights), weights > 0
    stratum = table.dominant[table.pair_group]
    combos, inverse = np.unique(stratum * n_classes + table.pair_class, return_inverse=True)
    cell = (inverse.reshape(-1, 1) * SPLIT_TURNS + np.arange(SPLIT_TURNS)) * n_parts + parts[table.pair_group]
    rows = np.bincount(cell.ravel(), weights=np.repeat(table.pair_rows, SPLIT_TURNS).astype(np.float64),
                       minlength=len(combos) * SPLIT_TURNS * n_parts).reshape(len(combos), SPLIT_TURNS, n_parts)
    bounds = np.searchsorted(combos // n_classes, np.arange(n_classes + 1))  # class c's groups: its combos
    present = [c for c in range(n_classes) if bounds[c + 1] > bounds[c]]
    target = np.bincount(table.pair_class, weights=table.pair_rows, minlength=n_classes)[:, None] * weights
    held, choice = np.zeros_like(target), np.zeros(n_classes, dtype=np.int64)
    for c in present:
        mine = slice(bounds[c], bounds[c + 1])
        own = rows[bounds[c] + np.searchsorted(combos[mine] % n_classes, c)]  # turn × part, the class's own rows
        choice[c] = (np.abs(own[:, used] / own[0].sum() - weights[used]) / weights[used]).max(axis=1).argmin()
        held[combos[mine] % n_classes] += rows[mine, choice[c]]
    for _ in range(sweeps):
        for c in present:
            mine = slice(bounds[c], bounds[c + 1])
            classes = combos[mine] % n_classes
            base = held[classes] - rows[mine, choice[c]]
            miss = (base[:, None, :] + rows[mine] - target[classes][:, None, :])[..., used] / weights[used]
            choice[c] = (miss ** 2).sum(axis=(0, 2)).argmin()
            held[classes] = base + rows[mine, choice[c]]
    return choice


def fast_splits(labels: np.ndarray, groups: np.ndarray, params: SplitParams, seed: int) -> list[Split]:
    """`make_splits` for many groups (`groups`: integer codes per row), by `assign_groups`: the holdout's
    train/val/test in one assignment, or k folds, each carving its validation from the rest the same way."""
    table = group_table(pd.factorize(labels)[0], groups)
    rng = np.random.default_rng(seed)
    val_share = params.val / (params.train + params.val)
    if params.strategy == "holdout":
        part = assign_groups(table, [params.train, params.val, params.test], rng)
        return [_parts_split(-1, part[groups])]
    if len(table.size) < params.folds:
        raise DataError(f"column 'group': {len(table.size)} distinct artist group(s) cannot fill {params.folds} folds. "
                        "Lower split.folds.")
    fold = assign_groups(table, np.ones(params.folds), rng)
    splits = []
    for k in range(params.folds):
        part = np.full(len(table.size), 2, dtype=np.int64)
        rest = fold != k
        part[rest] = assign_groups(table.subset(rest), [1 - val_share, val_share], rng)
        splits.append(_parts_split(k, part[groups]))
    return splits


def _parts_split(fold: int, part: np.ndarray) -> Split:
    """The Split of a per-row part code (0 train, 1 val, 2 test); a part without rows is an error."""
    split = Split(fold, np.flatnonzero(part == 0), np.flatnonzero(part == 1), np.flatnonzero(part == 2))
    if not len(split.train) or not len(split.test):
        raise DataError(f"{split.name}: no {'training' if not len(split.train) else 'test'} rows: one artist group "
                        "holds most of the tracks. Use more data or drop data.table.group_column to split by track.")
    return split


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
    codes, names = pd.factorize(groups)
    if len(names) < folds:
        raise DataError(f"column 'group': {len(names)} artist group(s) in the training rows of the {split.name} cannot "
                        f"fill {folds} bagging folds. Lower train.bagging.folds.")
    seed = seed + 7919 * (split.fold + 1)
    if len(names) >= FAST_SPLIT_MIN_GROUPS:
        table = group_table(pd.factorize(labels)[0], codes)
        fold = assign_groups(table, np.ones(folds), np.random.default_rng(seed))[codes]
        parts = [(np.flatnonzero(fold != j), np.flatnonzero(fold == j)) for j in range(folds)]
    else:
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            parts = list(splitter.split(np.zeros(len(rest)), labels, groups))
    return [Split(split.fold, np.sort(rest[train]), np.sort(rest[held]), split.test) for train, held in parts]


def with_gaps_logged(frame: pd.DataFrame, splits: list[Split]) -> list[Split]:
    """`splits`, after logging a warning for each part that lacks a class (`split_gaps`)."""
    for note in split_gaps(frame, splits):
        logger.warning(note)
    return splits


def share_gaps(labels: np.ndarray, splits: Sequence[Split]) -> np.ndarray:
    """|a class's share of a part's rows - its share of all rows|, one row per non-empty part of
    `splits` (train, val, test of each), one column per class (in order of first appearance)."""
    y, names = pd.factorize(np.asarray(labels))
    overall = np.bincount(y, minlength=len(names)) / len(y)
    parts = [rows for split in splits for rows in (split.train, split.val, split.test) if len(rows)]
    return np.array([np.abs(np.bincount(y[rows], minlength=len(names)) / len(rows) - overall) for rows in parts]
                    ).reshape(len(parts), len(names))


def share_deviation(labels: np.ndarray, splits: Sequence[Split], relative: bool = False) -> float:
    """The largest `share_gaps` over every class and part (0: perfectly stratified); `relative`: as a
    fraction of the class's share (a class of 1 % at 1.5 % in some part is 0.5)."""
    gaps = share_gaps(labels, splits)
    if relative:
        y, names = pd.factorize(np.asarray(labels))
        gaps = gaps / (np.bincount(y, minlength=len(names)) / len(y))
    return float(gaps.max(initial=0.0))


def split_gaps(frame: pd.DataFrame, splits: list[Split]) -> list[str]:
    """One note per split part that lacks a class (its metrics would be silently absent there)."""
    codes, names = pd.factorize(frame["label"].astype(str))
    names = np.asarray(names, dtype=object)
    notes = []
    for split in splits:
        for part in ("train", "val", "test"):
            rows = getattr(split, part)
            if part == "val" and len(rows) == 0:
                continue  # no validation split at all (split.val: 0)
            present = np.zeros(len(names), dtype=bool)
            present[codes[rows]] = True
            missing = sorted(names[~present])
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
