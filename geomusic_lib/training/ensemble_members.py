"""Each ensemble member's probabilities on every split of a run, read from the files the member
wrote when it trained, and nothing else (no checkpoint is reloaded, no baseline refitted):

- held-out rows, to fit the ensemble: `oof.parquet`. Bagged (`train.bagging.folds` > 1), these
  are every training row of the split, each scored by the bag member that left it out; unbagged,
  they are the split's validation rows (a baseline's from its fit on the training rows only);
- test rows, to score it: `predictions.parquet`.

Both are in the predictions format (`geomusic_lib.predict.predictions`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from geomusic_lib.core.rundir import RunDir
from geomusic_lib.data import RunData, Split, TrackTable
from geomusic_lib.predict.predictions import Predictions, read_predictions
from geomusic_lib.training.bagging import bag_rows
from geomusic_lib.training.ensemble import MemberProbabilities


def stored_test_proba(name: str, pred: Predictions, table: TrackTable, split: Split,
                      rows: np.ndarray | None = None) -> np.ndarray:
    """Rows of a member's stored predictions for `split` (its test rows, or `rows`), in that order."""
    if list(pred.classes) != table.classes():
        raise ValueError(f"{name}: its stored predictions have other classes than the run; rerun {name}")
    here = pred.fold == split.fold
    position = {tid: i for i, tid in enumerate(pred.track_ids[here])}
    wanted = table.frame["track_id"].iloc[split.test if rows is None else rows]
    missing = [t for t in wanted if t not in position]
    if missing:
        kind = "test" if rows is None else "held-out"
        raise ValueError(f"{name}: {len(missing)} {kind} tracks of fold {split.fold} have no stored prediction "
                         f"(e.g. {missing[0]}): it was trained on another split or bagging setting; rerun {name}")
    return pred.proba[here][[position[t] for t in wanted]]


def expected_held_out(split: Split, bagged: bool) -> np.ndarray:
    """The rows a member of this run was scored on while held out: every training row of a bagged
    split (`bag_rows`), else the validation rows."""
    return bag_rows(split) if bagged else np.sort(np.asarray(split.val, dtype=int))


def member_probabilities(run: RunDir, data: RunData, names: Sequence[str], stored: Mapping[str, Predictions],
                         bagged: bool) -> tuple[list[dict[str, MemberProbabilities]], list[np.ndarray]]:
    """For each split, every member's held-out and test probabilities, and the held-out rows.
    A member whose file misses one of those rows was trained on another split or bagging setting,
    and is refused."""
    missing = [m for m in names if not run.oof(m).is_file()]
    if missing:
        raise FileNotFoundError(f"{run.models_dir}: no held-out predictions (oof.parquet) for {missing}; rerun "
                                "their notebooks (03-07) with this version, which writes them as the models train")
    held = {m: read_predictions(run.oof(m)) for m in names}
    per_split, rows_of_split = [], []
    for split in data.splits:
        rows = expected_held_out(split, bagged)
        if not len(rows):
            raise ValueError(f"the ensemble is fitted on held-out rows, but fold {split.fold} has none "
                             "(split.val is 0 and train.bagging.folds is 1)")
        per_split.append({m: MemberProbabilities(stored_test_proba(m, held[m], data.table, split, rows),
                                                 stored_test_proba(m, stored[m], data.table, split)) for m in names})
        rows_of_split.append(rows)
    return per_split, rows_of_split
