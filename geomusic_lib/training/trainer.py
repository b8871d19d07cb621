"""One trainer for every model family: AdamW, cosine or plateau LR, gradient clipping, early
stopping, class-weighted loss, AMP on CUDA, a checkpoint after every epoch and exact resume.
Data stay in memory as tensors; batches are taken by indexing (`benchmarks/bench_throughput.py`).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn

from geomusic_lib.data import Split, TrackTable, ViewBatch
from geomusic_lib.data.geo import geo_soft_targets
from geomusic_lib.core.fileio import atomic_write_csv
from geomusic_lib.core.killpoint import hold_if_asked
from geomusic_lib.predict.inference import batch_probabilities, resolve_device
from geomusic_lib.models import MODELS, build_model, count_parameters, model_config_dict
from geomusic_lib.models.checkpoint import (FORMAT_VERSION, CheckpointError, load_checkpoint,
                                            model_from_checkpoint, save_checkpoint)
from geomusic_lib.core.params import Params
from geomusic_lib.predict.predictions import FoldPredictions
from geomusic_lib.core.progress import progress_bar
from geomusic_lib.core.rngstate import capture_rng_state, restore_rng_state
from geomusic_lib.core.rundir import checkpoint_path, fold_dir, history_path, oof_path, predictions_path
from geomusic_lib.core.threads import choose_threads, torch_threads
from geomusic_lib.training.bagging import bag_rows, split_members, train_bag
from geomusic_lib.training.setup import (class_coordinates, model_config, model_view, prepare_inputs, run_fingerprint,
                                         token_vocab)

#: Called after every epoch with the fold number and that epoch's history row (e.g. a tuner's pruning).
EpochCallback = Callable[[int, dict[str, float]], None]

__all__ = ["TrainResult", "FoldResult", "train_model", "model_view", "class_coordinates", "run_fingerprint", "EarlyStopping"]


@dataclass
class FoldResult:
    fold: int
    best_epoch: int
    best_metric: float
    epochs_run: int
    test_accuracy: float
    checkpoint: Path
    members: list["FoldResult"] = field(default_factory=list)  # a bag's members (train.bagging.folds > 1)


@dataclass
class TrainResult:
    name: str
    out_dir: Path
    predictions: Path
    n_parameters: int
    folds: list[FoldResult] = field(default_factory=list)

    @property
    def test_accuracy(self) -> float:
        """Mean test accuracy over folds (NaN before any fold has test rows)."""
        scores = [f.test_accuracy for f in self.folds if not math.isnan(f.test_accuracy)]
        return float(np.mean(scores)) if scores else float("nan")


def _write_history(history: list[dict[str, float]], path: Path) -> None:
    atomic_write_csv(pd.DataFrame(history), path)


@torch.no_grad()
def _evaluate(model: nn.Module, batch: ViewBatch, y: torch.Tensor, rows: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """Unweighted cross-entropy and accuracy on `rows` (data already on the device)."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(rows), batch_size):
        idx = rows[start:start + batch_size]
        logits = model(batch.x[idx], None if batch.mask is None else batch.mask[idx]).float()
        loss_sum += nn.functional.cross_entropy(logits, y[idx], reduction="sum").item()
        correct += int((logits.argmax(1) == y[idx]).sum())
    return loss_sum / len(rows), correct / len(rows)


# --------------------------------------------------------------------------- training
def train_model(name: str, table: TrackTable, splits: Sequence[Split], params: Params, out_dir: str | Path,
                frames: Sequence[np.ndarray] | None = None, progress: bool = True,
                class_info: pd.DataFrame | None = None, on_epoch: EpochCallback | None = None) -> TrainResult:
    """Train model `name` on each split; write checkpoints, `history.csv`, `predictions.parquet` (test
    rows) and `oof.parquet` (held-out rows: out-of-fold training rows when bagged, else validation rows).

    A holdout split trains in `out_dir`; k folds train in `out_dir/fold_<k>/`, and the
    predictions are the out-of-fold rows of all folds. Re-running the same command after a
    kill resumes from the last completed epoch (completed folds are skipped). `on_epoch`, when
    given, sees each epoch's history row (an exception it raises stops the training).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if not splits:
        raise ValueError("no splits to train on; make them with geomusic_lib.data.make_splits")
    params = params.for_tracks(len(table.frame)).for_model(name)  # bagging's k, then `train_per_model`
    out_dir = Path(out_dir)
    classes = table.classes()
    class_lat, class_lon, class_region = class_coordinates(table, classes, class_info)
    y_all = table.label_indices()
    view = model_view(name, params, table.grid_shape)
    device = resolve_device(params.device)
    collected, held_out = FoldPredictions(table.frame, classes), FoldPredictions(table.frame, classes)
    result = TrainResult(name, out_dir, predictions_path(out_dir), 0)
    for split in splits:
        if len(split.train) == 0:
            raise ValueError(f"{name}: the training split of fold {split.fold} is empty; check data filters and split fractions")
        members = split_members(table, split, params)
        seen = split if len(members) == 1 else Split(split.fold, bag_rows(split), np.array([], int), split.test)
        batch, norm, feature_names = prepare_inputs(table, seen, view, frames, len(token_vocab(params, name)))
        static = {
            "format_version": FORMAT_VERSION, "model_name": name, "classes": classes, "class_lat": class_lat,
            "class_lon": class_lon, "class_region": class_region, "feature_names": feature_names, "view": view,
            "grid_shape": list(table.grid_shape) if table.grid_shape else None, **norm.to_state(),
            "params": params.to_plain(), "fold": split.fold,
            "fingerprint": run_fingerprint(name, params, split, feature_names),
        }
        if len(members) == 1:
            fold_res, model = _train_fold(name, batch, y_all, split, params, static, fold_dir(out_dir, split.fold),
                                          device, progress, on_epoch)
            if len(split.val):  # the held-out rows of an unbagged model: the ensemble is fitted on them
                held_out.add(split.fold, split.val,
                             batch_probabilities(model, batch, split.val, params.train.batch_size * 4, device))
        else:
            fold_res, model, oof_proba = train_bag(name, batch, y_all, split, members, params, static,
                                                   fold_dir(out_dir, split.fold), device, progress, on_epoch)
            held_out.add(split.fold, bag_rows(split), oof_proba)
        result.folds.append(fold_res)
        result.n_parameters = count_parameters(model)
        if len(split.test):
            proba = batch_probabilities(model, batch, split.test, params.train.batch_size * 4, device)
            fold_res.test_accuracy = float((proba.argmax(1) == y_all[split.test]).mean())
            collected.add(split.fold, split.test, proba)
    collected.write(result.predictions)
    if held_out.parts:
        held_out.write(oof_path(out_dir))
    return result


@dataclass
class EarlyStopping:
    """Track the monitored metric: the best value and epoch, and epochs without improvement."""

    mode: str  # "min" or "max"
    patience: int
    best: float = math.nan
    best_epoch: int = -1
    bad_epochs: int = 0

    def __post_init__(self) -> None:
        if math.isnan(self.best):
            self.best = math.inf if self.mode == "min" else -math.inf

    def update(self, metric: float, epoch: int) -> bool:
        """Record one epoch's metric; True when it improved on the best so far."""
        improved = metric < self.best - 1e-6 if self.mode == "min" else metric > self.best + 1e-6
        if improved:
            self.best, self.best_epoch, self.bad_epochs = metric, epoch, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def stopped(self) -> bool:
        return self.bad_epochs >= self.patience


@dataclass
class _Fold:
    """Everything one fold's loop updates, so the steps below can be named functions."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    gen: torch.Generator
    stopper: EarlyStopping
    monitor: str
    use_amp: bool
    soft_targets: torch.Tensor | None = None  # (C, C) rows: the training target of each true class
    history: list[dict[str, float]] = field(default_factory=list)
    start_epoch: int = 0


def _resumable(name: str, split: Split, static: dict[str, Any], last_path: Path) -> dict[str, Any] | None:
    """The last checkpoint of this fold when it matches this run's settings, else None (with a warning)."""
    if not last_path.exists():
        return None
    try:
        resume = load_checkpoint(last_path)
    except CheckpointError as err:
        warnings.warn(f"{err} Starting fold {split.fold} of {name} from scratch.", stacklevel=4)
        return None
    if resume.get("fingerprint") != static["fingerprint"]:
        warnings.warn(f"{last_path}: trained with other params, split or features; retraining {name} from scratch.",
                      stacklevel=4)
        return None
    return resume


def _finished_fold(resume: dict[str, Any], split: Split, best_path: Path,
                   device: torch.device) -> tuple[FoldResult, nn.Module] | None:
    """A completed fold's best model, reused as it is; None when the best checkpoint is unreadable
    (the fold is then trained again)."""
    try:
        best = load_checkpoint(best_path, map_location=device)
    except CheckpointError as err:
        warnings.warn(f"{err} Training fold {split.fold} again.", stacklevel=4)
        return None
    print(f"{best_path.parent}: reusing the finished training (best epoch {int(best['epoch'])} of "
          f"{int(resume['epoch'])}); delete that folder to train again")
    return (FoldResult(split.fold, int(best["epoch"]), float(best["best_metric"]), int(resume["epoch"]),
                       float("nan"), best_path), model_from_checkpoint(best, device))


def _new_fold(name: str, batch: ViewBatch, y_train: np.ndarray, split: Split, params: Params,
              device: torch.device, static: dict[str, Any]) -> _Fold:
    """A seeded model, optimiser, scheduler, loss and early-stopping state for one fold."""
    tp = params.train
    seed = params.seed + max(split.fold, 0) + 1000 * int(static.get("bag_member", 0))
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    gen = torch.Generator().manual_seed(seed)
    n_classes = len(static["classes"])
    config = model_config(name, params, batch.x[torch.as_tensor(split.train, dtype=torch.long)], n_classes)
    model = build_model(name, config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay)
    monitor = tp.monitor if len(split.val) else "train_loss"
    if not len(split.val):
        warnings.warn(f"{name} fold {split.fold}: no validation rows; early stopping watches the training loss.", stacklevel=4)
    mode = "max" if monitor == "val_accuracy" else "min"
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=tp.epochs) if tp.scheduler == "cosine"
                 else torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.5,
                                                                 patience=max(1, tp.patience // 3))
                 if tp.scheduler == "plateau" else None)
    use_amp = device.type == "cuda" and tp.amp
    weights = np.ones(n_classes, dtype=np.float32)
    if tp.class_weights:
        present = np.unique(y_train)
        weights[present] = compute_class_weight("balanced", classes=present, y=y_train)
    criterion = nn.CrossEntropyLoss(weight=torch.as_tensor(weights, device=device), label_smoothing=tp.label_smoothing)
    soft = None
    if tp.geo_smoothing_km is not None:
        soft = torch.as_tensor(geo_soft_targets(static["class_lat"], static["class_lon"], tp.geo_smoothing_km),
                               dtype=torch.float32, device=device)
    return _Fold(model, optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=use_amp), criterion, gen,
                 EarlyStopping(mode, tp.patience), monitor, use_amp, soft)


def _restore(fold: _Fold, resume: dict[str, Any]) -> None:
    """Continue from a last checkpoint: weights, optimiser, scheduler, scaler, RNG and history."""
    fold.model.load_state_dict(resume["state_dict"])
    fold.optimizer.load_state_dict(resume["optimizer_state"])
    if fold.scheduler is not None:
        fold.scheduler.load_state_dict(resume["scheduler_state"])
    if resume.get("scaler_state"):
        fold.scaler.load_state_dict(resume["scaler_state"])
    restore_rng_state(resume["rng_state"], fold.gen)
    fold.start_epoch, fold.history = int(resume["epoch"]), list(resume["history"])
    fold.stopper.best, fold.stopper.best_epoch = float(resume["best_metric"]), int(resume["best_epoch"])
    fold.stopper.bad_epochs = int(resume["bad_epochs"])


def _train_one_epoch(fold: _Fold, x: ViewBatch, y: torch.Tensor, train_rows: torch.Tensor,
                     batch_size: int, grad_clip: float) -> tuple[float, float]:
    """One pass over the shuffled training rows; returns (mean loss, accuracy)."""
    model, device = fold.model, train_rows.device
    model.train()
    order = train_rows[torch.randperm(len(train_rows), generator=fold.gen).to(device)]
    loss_sum, correct, seen = 0.0, 0, 0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        if len(idx) < 2:  # BatchNorm cannot train on a single row
            continue
        xb, mb, yb = x.x[idx], None if x.mask is None else x.mask[idx], y[idx]
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=fold.use_amp):
            logits, yb = _training_logits(model, xb, mb, yb)
            loss = fold.criterion(logits.float(), yb if fold.soft_targets is None else fold.soft_targets[yb])
        fold.optimizer.zero_grad(set_to_none=True)
        fold.scaler.scale(loss).backward()
        fold.scaler.unscale_(fold.optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        fold.scaler.step(fold.optimizer)
        fold.scaler.update()
        loss_sum += loss.item() * len(idx)
        correct += float((logits.argmax(1) == yb).float().mean()) * len(idx)  # TabM: the mean over its k members
        seen += len(idx)
    return loss_sum / max(seen, 1), correct / max(seen, 1)


def _training_logits(model: nn.Module, x: torch.Tensor, mask: torch.Tensor | None,
                     y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels the loss sees: a multi-member model (TabM) trains each member on its own
    loss, so its `(N, k, C)` member logits become `N·k` rows, each label repeated k times."""
    if not hasattr(model, "member_logits"):
        return model(x, mask), y
    members = model.member_logits(x, mask)
    return members.flatten(0, 1), y.repeat_interleave(members.shape[1])


def _step_scheduler(fold: _Fold, metric: float) -> None:
    if isinstance(fold.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        fold.scheduler.step(metric)
    elif fold.scheduler is not None:
        fold.scheduler.step()


def _checkpoint_payload(fold: _Fold, static: dict[str, Any], epoch: int, completed: bool) -> dict[str, Any]:
    """Everything needed to predict from this epoch's weights or to resume right after it."""
    return {**static, "state_dict": fold.model.state_dict(), "epoch": epoch, "best_metric": fold.stopper.best,
            "best_epoch": fold.stopper.best_epoch, "bad_epochs": fold.stopper.bad_epochs, "monitor": fold.monitor,
            "optimizer_state": fold.optimizer.state_dict(),
            "scheduler_state": fold.scheduler.state_dict() if fold.scheduler is not None else {},
            "scaler_state": fold.scaler.state_dict() if fold.use_amp else {}, "rng_state": capture_rng_state(fold.gen),
            "history": fold.history, "completed": completed}


def _train_fold(name: str, batch: ViewBatch, y_all: np.ndarray, split: Split, params: Params, static: dict[str, Any],
                out: Path, device: torch.device, progress: bool,
                on_epoch: EpochCallback | None = None) -> tuple[FoldResult, nn.Module]:
    """Train one split with early stopping; a checkpoint after every epoch makes a kill resumable."""
    last_path, best_path = checkpoint_path(out, "last"), checkpoint_path(out, "best")
    resume = _resumable(name, split, static, last_path)
    if resume is not None and resume.get("completed"):
        finished = _finished_fold(resume, split, best_path, device)
        if finished is not None:
            return finished
        resume = None
    fold = _new_fold(name, batch, y_all[split.train], split, params, device, static)
    static = {**static, "model_config": model_config_dict(fold.model), "n_parameters": count_parameters(fold.model)}
    if resume is not None:
        _restore(fold, resume)
        print(f"{out}: resuming {name} after epoch {fold.start_epoch} (the last checkpoint of an interrupted run)")
    threads = choose_threads(params.train.threads, fold.model, batch.x[:1].to(device), device)
    with torch_threads(threads):
        _epochs(name, fold, batch.to(device), torch.tensor(y_all, device=device), split, params, static, out,
                progress, on_epoch)
    best = load_checkpoint(best_path, map_location=device)
    fold.model.load_state_dict(best["state_dict"])
    fold.model.eval()
    return FoldResult(split.fold, fold.stopper.best_epoch, fold.stopper.best, len(fold.history), float("nan"),
                      best_path), fold.model


def _epochs(name: str, fold: _Fold, x: ViewBatch, y: torch.Tensor, split: Split, params: Params,
            static: dict[str, Any], out: Path, progress: bool, on_epoch: EpochCallback | None) -> None:
    """The epoch loop: train, validate, step the schedule, checkpoint; stop early or at `train.epochs`."""
    tp, device = params.train, y.device
    train_rows = torch.as_tensor(split.train, dtype=torch.long, device=device)
    val_rows = torch.as_tensor(np.asarray(split.val), dtype=torch.long, device=device)
    label = name + (f" fold {split.fold}" if split.fold >= 0 else "")
    bar = progress_bar(range(fold.start_epoch, tp.epochs), desc=label, initial=fold.start_epoch, total=tp.epochs,
                       enabled=progress, leave=False)
    for epoch in bar:
        if fold.stopper.stopped:
            break
        t0 = time.perf_counter()
        train_loss, train_acc = _train_one_epoch(fold, x, y, train_rows, tp.batch_size, tp.grad_clip)
        row = {"epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": train_acc, "val_loss": float("nan"),
               "val_accuracy": float("nan"), "lr": fold.optimizer.param_groups[0]["lr"]}
        if len(val_rows):
            row["val_loss"], row["val_accuracy"] = _evaluate(fold.model, x, y, val_rows, tp.batch_size * 4)
        row["seconds"], row["threads"] = time.perf_counter() - t0, torch.get_num_threads()
        fold.history.append(row)
        metric = row[fold.monitor]
        if not math.isfinite(metric):
            raise ValueError(f"{name} fold {split.fold}: {fold.monitor} is {metric} at epoch {epoch + 1}, so training "
                             "diverged. Lower train.lr or check the features for extreme values.")
        _step_scheduler(fold, metric)
        improved = fold.stopper.update(metric, epoch + 1)
        ckpt = _checkpoint_payload(fold, static, epoch + 1, fold.stopper.stopped or epoch + 1 == tp.epochs)
        if improved:
            save_checkpoint(ckpt, checkpoint_path(out, "best"))
        save_checkpoint(ckpt, checkpoint_path(out, "last"))
        _write_history(fold.history, history_path(out))
        hold_if_asked(name, epoch + 1, out)
        bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{train_acc:.2f}", val_acc=f"{row['val_accuracy']:.2f}")
        if on_epoch is not None:
            on_epoch(split.fold, row)
        if fold.stopper.stopped:
            break
    bar.close()
