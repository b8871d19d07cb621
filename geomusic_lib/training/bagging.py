"""k-fold bagging of a network inside one split (`train.bagging.folds`), as AutoGluon bags its models.

The split's training and validation rows are cut into k grouped, stratified folds
(`geomusic_lib.data.bag_splits`). Member j trains on the other folds and early-stops on fold j, so
every training row gets one out-of-fold (OOF) probability, from the member that never saw it. The
bag predicts the test rows with the mean of its members' probabilities, and is saved as one
self-contained checkpoint (`models.Bag`) beside its members' folders `bag_<j>/`, each resumable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from geomusic_lib.core.params import Params
from geomusic_lib.core.rundir import bag_member_dir, checkpoint_path
from geomusic_lib.data import bag_splits, Split, TrackTable, ViewBatch
from geomusic_lib.models import Bag, model_config_dict
from geomusic_lib.models.checkpoint import save_checkpoint
from geomusic_lib.predict.inference import batch_probabilities


def bag_rows(split: Split) -> np.ndarray:
    """The rows a bag learns from (and scores out of fold): the split's training and validation rows."""
    return np.sort(np.concatenate([split.train, split.val]).astype(int))


def oof_positions(rows: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """Where a member's held-out rows sit in `rows` (the sorted `bag_rows`)."""
    return np.searchsorted(rows, np.asarray(held_out, dtype=int))


def split_members(table: TrackTable, split: Split, params: Params) -> list[Split]:
    """The split itself, or with `train.bagging.folds` k > 1 the k members of its bag (grouped as
    the run's split is, identical feature vectors included under `data.duplicates: group`)."""
    joined = table.feature_names if params.data.duplicates == "group" else ()
    return bag_splits(table.frame, split, params.train.bagging.folds, params.seed, joined)


def train_bag(name: str, batch: ViewBatch, y_all: np.ndarray, split: Split, members: Sequence[Split], params: Params,
              static: dict[str, Any], out: Path, device: torch.device, progress: bool,
              on_epoch: Any = None) -> tuple[Any, Bag, np.ndarray]:
    """Train every member of the bag of `split` (skipping finished ones); write the bag's checkpoint.

    Returns the bag's `FoldResult` (its members' results in `members`), the bag and the OOF
    probabilities of `bag_rows(split)`, in that order of rows."""
    from geomusic_lib.training.trainer import FoldResult, _train_fold, run_fingerprint

    rows = bag_rows(split)
    oof = np.zeros((len(rows), len(static["classes"])))
    results, models = [], []
    batch_size = params.train.batch_size * 4
    for j, member in enumerate(members):
        fingerprint = run_fingerprint(name, params, member, static["feature_names"]) + f":bag{j}/{len(members)}"
        member_static = {**static, "bag_member": j, "fingerprint": fingerprint}
        result, model = _train_fold(name, batch, y_all, member, params, member_static, bag_member_dir(out, j),
                                    device, progress, on_epoch)
        oof[oof_positions(rows, member.val)] = batch_probabilities(model, batch, member.val, batch_size, device)
        results.append(result)
        models.append(model)
    bag = Bag(models).eval()
    best = checkpoint_path(out, "best")
    save_checkpoint(bag_checkpoint(bag, static, results), best)
    summary = FoldResult(split.fold, int(np.median([r.best_epoch for r in results])),
                         float(np.mean([r.best_metric for r in results])), max(r.epochs_run for r in results),
                         float("nan"), best, members=results)
    return summary, bag, oof


def bag_checkpoint(bag: Bag, static: dict[str, Any], results: Sequence[Any]) -> dict[str, Any]:
    """One checkpoint for the whole bag: the shared fields of a network's checkpoint, the members'
    configs and weights (as the `Bag`'s state dict) and each member's best epoch."""
    return {**static, "model_config": {"bag": [model_config_dict(m) for m in bag.members]},
            "state_dict": bag.state_dict(), "bag_size": len(bag.members),
            "bag_members": [{"best_epoch": r.best_epoch, "best_metric": r.best_metric, "epochs_run": r.epochs_run}
                            for r in results],
            "epoch": int(np.median([r.best_epoch for r in results])),
            "best_metric": float(np.mean([r.best_metric for r in results])), "completed": True}
