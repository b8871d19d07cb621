"""k-fold bagging of a network inside one split (`train.bagging.folds`), as AutoGluon bags its models.

The split's training and validation rows are cut into k grouped, stratified folds
(`geomusic_lib.data.bag_splits`). Member j trains on the other folds and early-stops on fold j, so
every training row gets one out-of-fold (OOF) probability, from the member that never saw it. The
bag predicts the test rows with the mean of its members' probabilities, and is saved as one
self-contained checkpoint (`models.Bag`) beside its members' folders `bag_<j>/`, each resumable.
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from geomusic_lib.core.params import Params
from geomusic_lib.core.rundir import bag_member_dir, checkpoint_path
from geomusic_lib.core.threads import free_cores
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


def split_members(table: TrackTable, split: Split, params: Params, folds: int | None = None) -> list[Split]:
    """The split itself, or with `folds` (default `train.bagging.folds`) k > 1 the k members of its
    bag (grouped as the run's split is, identical feature vectors included under `data.duplicates: group`)."""
    k = params.train.bagging.folds_for(len(table.frame)) if folds is None else folds
    if k <= 1:
        return [split]
    joined = table.feature_names if params.data.duplicates == "group" else ()
    return bag_splits(table.frame, split, k, params.seed, joined)


def train_bag(name: str, batch: ViewBatch, y_all: np.ndarray, split: Split, members: Sequence[Split], params: Params,
              static: dict[str, Any], out: Path, device: torch.device, progress: bool,
              on_epoch: Any = None) -> tuple[Any, Bag, np.ndarray]:
    """Train every member of the bag of `split` (skipping finished ones), `train.bagging.jobs` at
    once; write the bag's checkpoint.

    Returns the bag's `FoldResult` (its members' results in `members`), the bag and the OOF
    probabilities of `bag_rows(split)`, in that order of rows."""
    from geomusic_lib.training.trainer import FoldResult, _train_fold

    member_statics = [member_static(name, params, member, static, j, len(members)) for j, member in enumerate(members)]
    jobs = bag_jobs(params.train.bagging.jobs, len(members), device)
    parallel = jobs > 1 and on_epoch is None
    if parallel:  # members train in worker processes; the loop below then reuses them
        train_members_in_parallel(name, batch, y_all, members, params, member_statics, out, device, jobs)
        print(f"{out}: {len(members)} bag members of {name} trained in {jobs} processes")
    rows = bag_rows(split)
    oof = np.zeros((len(rows), len(static["classes"])))
    results, models = [], []
    for j, member in enumerate(members):
        with contextlib.redirect_stdout(io.StringIO()) if parallel else contextlib.nullcontext():  # "reusing ..."
            result, model = _train_fold(name, batch, y_all, member, params, member_statics[j], bag_member_dir(out, j),
                                        device, progress, on_epoch)
        oof[oof_positions(rows, member.val)] = batch_probabilities(model, batch, member.val,
                                                                   params.train.batch_size * 4, device)
        results.append(result)
        models.append(model)
    bag = Bag(models).eval()
    best = checkpoint_path(out, "best")
    save_checkpoint(bag_checkpoint(bag, static, results), best)
    summary = FoldResult(split.fold, int(np.median([r.best_epoch for r in results])),
                         float(np.mean([r.best_metric for r in results])), max(r.epochs_run for r in results),
                         float("nan"), best, members=results)
    return summary, bag, oof


def member_static(name: str, params: Params, member: Split, static: dict[str, Any], j: int,
                  k: int) -> dict[str, Any]:
    """Member j's checkpoint fields: the bag's, with its number and its own resume fingerprint."""
    from geomusic_lib.training.setup import run_fingerprint

    fingerprint = run_fingerprint(name, params, member, static["feature_names"]) + f":bag{j}/{k}"
    return {**static, "bag_member": j, "fingerprint": fingerprint}


def bag_jobs(setting: int | str, k: int, device: torch.device) -> int:
    """How many members train at once (`train.bagging.jobs`): at most k; `auto` = the visible GPUs
    on CUDA, else the free CPU cores."""
    if setting == "auto":
        setting = torch.cuda.device_count() if device.type == "cuda" else free_cores()
    return max(1, min(int(setting), k))


def train_members_in_parallel(name: str, batch: ViewBatch, y_all: np.ndarray, members: Sequence[Split],
                              params: Params, statics: Sequence[dict[str, Any]], out: Path, device: torch.device,
                              jobs: int) -> None:
    """Train the bag's members in `jobs` spawned processes (member j on GPU j mod n with several
    GPUs). Each writes its checkpoints as a lone member would, so a kill resumes the same way; the
    workers die with this process."""
    n_gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if params.train.threads == "auto":  # the members share the cores: one thread each (threads never change results)
        params = params.model_copy(update={"train": params.train.model_copy(update={"threads": 1})})
    tasks = [(name, batch, y_all, member, params, statics[j], bag_member_dir(out, j),
              f"cuda:{j % n_gpus}" if n_gpus > 1 else str(device)) for j, member in enumerate(members)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=die_with_parent) as pool:
        for done in [pool.submit(train_member, *task) for task in tasks]:
            done.result()


def train_member(name: str, batch: ViewBatch, y_all: np.ndarray, member: Split, params: Params,
                 static: dict[str, Any], folder: Path, device: str) -> None:
    """One bag member in a worker process (its model is read back from its checkpoint)."""
    from geomusic_lib.training.trainer import _train_fold

    _train_fold(name, batch, y_all, member, params, static, folder, torch.device(device), False)


def die_with_parent() -> None:
    """Linux: a worker gets SIGKILL when the process that started it dies (so a killed run leaves no
    orphan writing into the members' folders). Elsewhere: nothing."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def bag_checkpoint(bag: Bag, static: dict[str, Any], results: Sequence[Any]) -> dict[str, Any]:
    """One checkpoint for the whole bag: the shared fields of a network's checkpoint, the members'
    configs and weights (as the `Bag`'s state dict) and each member's best epoch."""
    return {**static, "model_config": {"bag": [model_config_dict(m) for m in bag.members]},
            "state_dict": bag.state_dict(), "bag_size": len(bag.members),
            "bag_members": [{"best_epoch": r.best_epoch, "best_metric": r.best_metric, "epochs_run": r.epochs_run}
                            for r in results],
            "epoch": int(np.median([r.best_epoch for r in results])),
            "best_metric": float(np.mean([r.best_metric for r in results])), "completed": True}
