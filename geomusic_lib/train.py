"""One trainer for every model family: AdamW, cosine or plateau LR, gradient clipping, early
stopping, class-weighted loss, AMP on CUDA, a checkpoint after every epoch and exact resume.

The data stay in memory as tensors and batches are taken by indexing, so small tabular
models are not bottlenecked by per-item Python (see `benchmarks/bench_throughput.py`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from geomusic_lib.progress import progress_bar

from geomusic_lib.data import Normalizer, Split, TrackTable, ViewBatch, make_view
from geomusic_lib.data.store import class_table
from geomusic_lib.data.views import pad_frames
from geomusic_lib.models import MODELS, build_model, count_parameters, model_config_dict
from geomusic_lib.models.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from geomusic_lib.params import Params
from geomusic_lib.results import write_predictions

__all__ = ["TrainResult", "FoldResult", "train_model", "predict_proba", "model_view", "resolve_device",
           "load_checkpoint", "model_from_checkpoint", "CheckpointError", "class_coordinates"]


@dataclass
class FoldResult:
    fold: int
    best_epoch: int
    best_metric: float
    epochs_run: int
    test_accuracy: float
    checkpoint: Path


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


# --------------------------------------------------------------------------- set-up helpers
def resolve_device(device: str) -> torch.device:
    """`auto` → CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but no CUDA GPU is available; use device: auto or cpu")
    return torch.device(device)


def model_view(name: str, params: Params) -> str:
    """The data view (see `geomusic_lib.data.make_view`) that model `name` reads."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if name == "fcnn":
        return "vector"
    view = getattr(params.model, name).view
    if name == "cnn":
        return view
    return "grid_sequence" if view == "grid" else view


def _model_config(name: str, params: Params, x: torch.Tensor, n_classes: int) -> dict[str, Any]:
    hp = getattr(params.model, name).model_dump(exclude={"view"})
    if name == "fcnn":
        return {"in_features": int(np.prod(x.shape[1:])), "n_classes": n_classes, **hp}
    if name == "cnn":
        dims = 2 if x.dim() == 4 else 1
        return {"in_channels": int(x.shape[1] if dims == 2 else x.shape[2]), "n_classes": n_classes, "dims": dims, **hp}
    return {"in_channels": int(x.shape[2]), "n_classes": n_classes, **hp}


def class_coordinates(table: TrackTable, classes: Sequence[str],
                      class_info: pd.DataFrame | None = None) -> tuple[list[float], list[float], list[str]]:
    """Latitude, longitude and region of each class (label-encoder order), from the run's
    `classes.csv` when given, else computed from the table."""
    info = (class_info if class_info is not None else class_table(table.frame)).set_index("class").loc[list(classes)]
    return (info["lat"].astype(float).tolist(), info["lon"].astype(float).tolist(),
            info["region"].fillna("").astype(str).tolist())


def _check_finite_features(x: np.ndarray, names: Sequence[str]) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        cols = np.flatnonzero(bad.any(axis=0))
        rows = np.flatnonzero(bad.any(axis=1))
        shown = [names[c] for c in cols[:5]] if len(names) == x.shape[1] else cols[:5].tolist()
        raise ValueError(
            f"features contain {int(bad.sum())} NaN or infinite value(s) in {len(rows)} track(s), in column(s) {shown}"
            f"{' …' if len(cols) > 5 else ''}. Impute or drop those tracks before training."
        )


def _prepare_inputs(table: TrackTable, split: Split, view: str,
                    frames: Sequence[np.ndarray] | None) -> tuple[ViewBatch, Normalizer, list[str]]:
    """Normalise with statistics of the training rows only, then shape the chosen view."""
    if view == "frames":
        if frames is None:
            raise ValueError("view 'frames' needs frame sequences: pass frames=… (one (T, C) array per table row)")
        if len(frames) != len(table.frame):
            raise ValueError(f"got {len(frames)} frame sequences for {len(table.frame)} tracks; pass one per table row")
        for i, f in enumerate(frames):
            if not np.isfinite(f).all():
                raise ValueError(f"frames of track {table.frame['track_id'].iloc[i]!r} contain NaN or infinite values")
        norm = Normalizer.fit([frames[i] for i in split.train])
        batch = pad_frames([norm.transform(f) for f in frames])
        return batch, norm, [f"frame_c{c:02d}" for c in range(batch.x.shape[2])]
    x = table.features
    _check_finite_features(x, table.feature_names)
    norm = Normalizer.fit(x[split.train])
    return make_view(view, norm.transform(x), grid_shape=table.grid_shape), norm, list(table.feature_names)


def fingerprint(name: str, params: Params, split: Split, feature_names: Sequence[str]) -> str:
    """What must match for a checkpoint to be resumed: model, training params, seed, split and features."""
    payload = {
        "model": name, "hp": getattr(params.model, name).model_dump(mode="json"),
        "train": params.train.model_dump(mode="json"), "seed": params.seed, "fold": split.fold,
        "rows": [np.asarray(getattr(split, p)).tolist() for p in ("train", "val", "test")],
        "features": list(feature_names),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "shuffle": gen.get_state(),
             "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    gen.set_state(state["shuffle"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_history(history: list[dict[str, float]], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pd.DataFrame(history).to_csv(tmp, index=False)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- inference
@torch.no_grad()
def predict_proba(model: nn.Module, batch: ViewBatch, rows: np.ndarray | None = None, batch_size: int = 512,
                  device: torch.device | str = "cpu") -> np.ndarray:
    """Class probabilities `(n, K)` for `rows` of `batch` (all rows when None), in eval mode."""
    model.eval()
    rows_t = torch.arange(len(batch)) if rows is None else torch.as_tensor(rows, dtype=torch.long)
    out = []
    for start in range(0, len(rows_t), batch_size):
        part = batch.index(rows_t[start:start + batch_size]).to(device)
        out.append(torch.softmax(model(part.x, part.mask).float(), dim=1).cpu())
    n_classes = getattr(model.config, "n_classes")
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, n_classes))


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
                class_info: pd.DataFrame | None = None) -> TrainResult:
    """Train model `name` on each split; write checkpoints, `history.csv` and `predictions.parquet`.

    A holdout split trains in `out_dir`; k folds train in `out_dir/fold_<k>/`, and the
    predictions are the out-of-fold rows of all folds. Re-running the same command after a
    kill resumes from the last completed epoch (completed folds are skipped).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if not splits:
        raise ValueError("no splits to train on; make them with geomusic_lib.data.make_splits")
    params = params.for_model(name)  # `train` plus this network's `train_per_model` entry
    out_dir = Path(out_dir)
    classes = table.classes()
    class_lat, class_lon, class_region = class_coordinates(table, classes, class_info)
    y_all = table.label_indices()
    view = model_view(name, params)
    device = resolve_device(params.device)

    rows_out: list[pd.DataFrame] = []
    probas: list[np.ndarray] = []
    result = TrainResult(name, out_dir, out_dir / "predictions.parquet", 0)
    for split in splits:
        if len(split.train) == 0:
            raise ValueError(f"{name}: the training split of fold {split.fold} is empty; check data filters and split fractions")
        fold_dir = out_dir if split.fold < 0 else out_dir / f"fold_{split.fold}"
        batch, norm, feature_names = _prepare_inputs(table, split, view, frames)
        static = {
            "format_version": FORMAT_VERSION, "model_name": name, "classes": classes, "class_lat": class_lat,
            "class_lon": class_lon, "class_region": class_region, "feature_names": feature_names, "view": view,
            "grid_shape": list(table.grid_shape) if table.grid_shape else None,
            "norm_mean": norm.mean.tolist(), "norm_std": norm.std.tolist(), "params": params.to_plain(),
            "fold": split.fold, "fingerprint": fingerprint(name, params, split, feature_names),
        }
        fold_res, model = _train_fold(name, batch, y_all, split, params, static, fold_dir, device, len(classes), progress)
        result.folds.append(fold_res)
        result.n_parameters = count_parameters(model)
        if len(split.test):
            proba = predict_proba(model, batch, split.test, params.train.batch_size * 4, device)
            fold_res.test_accuracy = float((proba.argmax(1) == y_all[split.test]).mean())
            probas.append(proba)
            rows_out.append(table.frame.iloc[split.test][["track_id", "label", "lat", "lon"]].assign(fold=split.fold))
    if rows_out:
        rows = pd.concat(rows_out, ignore_index=True)
        write_predictions(result.predictions, rows["track_id"], rows["label"], np.concatenate(probas), classes,
                          rows["lat"], rows["lon"], rows["fold"])
    return result


def _train_fold(name: str, batch: ViewBatch, y_all: np.ndarray, split: Split, params: Params, static: dict[str, Any],
                fold_dir: Path, device: torch.device, n_classes: int, progress: bool) -> tuple[FoldResult, nn.Module]:
    tp = params.train
    last_path, best_path = fold_dir / "checkpoint_last.pt", fold_dir / "checkpoint_best.pt"
    seed = params.seed + max(split.fold, 0)

    resume = None
    if last_path.exists():
        try:
            resume = load_checkpoint(last_path)
        except CheckpointError as err:
            warnings.warn(f"{err} Starting fold {split.fold} of {name} from scratch.", stacklevel=3)
        if resume is not None and resume.get("fingerprint") != static["fingerprint"]:
            warnings.warn(f"{last_path}: trained with other params, split or features; retraining {name} from scratch.",
                          stacklevel=3)
            resume = None
    if resume is not None and resume.get("completed") and best_path.exists():
        best = load_checkpoint(best_path, map_location=device)
        model = model_from_checkpoint(best, device)
        return FoldResult(split.fold, int(best["epoch"]), float(best["best_metric"]), int(resume["epoch"]),
                          float("nan"), best_path), model

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    gen = torch.Generator().manual_seed(seed)
    model = build_model(name, _model_config(name, params, batch.x, n_classes)).to(device)
    static = {**static, "model_config": model_config_dict(model), "n_parameters": count_parameters(model)}
    optimizer = torch.optim.AdamW(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay)
    val_rows = np.asarray(split.val)
    monitor = tp.monitor if len(val_rows) else "train_loss"
    if not len(val_rows):
        warnings.warn(f"{name} fold {split.fold}: no validation rows; early stopping watches the training loss.", stacklevel=3)
    mode = "max" if monitor == "val_accuracy" else "min"
    if tp.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=tp.epochs)
    elif tp.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.5,
                                                               patience=max(1, tp.patience // 3))
    else:
        scheduler = None
    use_amp = device.type == "cuda" and tp.amp
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    y_train = y_all[split.train]
    weights = np.ones(n_classes, dtype=np.float32)
    if tp.class_weights:
        present = np.unique(y_train)
        weights[present] = compute_class_weight("balanced", classes=present, y=y_train)
    criterion = nn.CrossEntropyLoss(weight=torch.as_tensor(weights, device=device), label_smoothing=tp.label_smoothing)

    x = batch.to(device)
    y = torch.tensor(y_all, device=device)
    train_rows = torch.as_tensor(split.train, dtype=torch.long, device=device)
    val_t = torch.as_tensor(val_rows, dtype=torch.long, device=device)

    start_epoch, history = 0, []
    best_metric = math.inf if mode == "min" else -math.inf
    best_epoch, bad_epochs = -1, 0
    if resume is not None:
        model.load_state_dict(resume["state_dict"])
        optimizer.load_state_dict(resume["optimizer_state"])
        if scheduler is not None:
            scheduler.load_state_dict(resume["scheduler_state"])
        if resume.get("scaler_state"):
            scaler.load_state_dict(resume["scaler_state"])
        _set_rng_state(resume["rng_state"], gen)
        start_epoch, history = int(resume["epoch"]), list(resume["history"])
        best_metric, best_epoch, bad_epochs = float(resume["best_metric"]), int(resume["best_epoch"]), int(resume["bad_epochs"])
    fold_dir.mkdir(parents=True, exist_ok=True)

    bar = progress_bar(range(start_epoch, tp.epochs), desc=f"{name}" + (f" fold {split.fold}" if split.fold >= 0 else ""),
               initial=start_epoch, total=tp.epochs, enabled=progress, leave=False)
    epoch, stopped = start_epoch, resume is not None and bad_epochs >= tp.patience
    for epoch in bar:
        if stopped:
            break
        t0 = time.perf_counter()
        model.train()
        order = train_rows[torch.randperm(len(train_rows), generator=gen).to(device)]
        loss_sum, correct, seen = 0.0, 0, 0
        for start in range(0, len(order), tp.batch_size):
            idx = order[start:start + tp.batch_size]
            if len(idx) < 2:  # BatchNorm cannot train on a single row
                continue
            xb, mb, yb = x.x[idx], None if x.mask is None else x.mask[idx], y[idx]
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                logits = model(xb, mb)
                loss = criterion(logits.float(), yb)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), tp.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1),
               "val_loss": float("nan"), "val_accuracy": float("nan"), "lr": optimizer.param_groups[0]["lr"]}
        if len(val_t):
            row["val_loss"], row["val_accuracy"] = _evaluate(model, x, y, val_t, tp.batch_size * 4)
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        metric = row[monitor]
        if not math.isfinite(metric):
            raise ValueError(f"{name} fold {split.fold}: {monitor} is {metric} at epoch {epoch + 1}, so training diverged. "
                             "Lower train.lr or check the features for extreme values.")
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(metric)
        elif scheduler is not None:
            scheduler.step()
        improved = metric < best_metric - 1e-6 if mode == "min" else metric > best_metric + 1e-6
        if improved:
            best_metric, best_epoch, bad_epochs = metric, epoch + 1, 0
        else:
            bad_epochs += 1
        stopped = bad_epochs >= tp.patience
        ckpt = {**static, "state_dict": model.state_dict(), "epoch": epoch + 1, "best_metric": best_metric,
                "best_epoch": best_epoch, "bad_epochs": bad_epochs, "monitor": monitor,
                "optimizer_state": optimizer.state_dict(),
                "scheduler_state": scheduler.state_dict() if scheduler is not None else {},
                "scaler_state": scaler.state_dict() if use_amp else {}, "rng_state": _rng_state(gen),
                "history": history, "completed": stopped or epoch + 1 == tp.epochs}
        if improved:
            save_checkpoint(ckpt, best_path)
        save_checkpoint(ckpt, last_path)
        _write_history(history, fold_dir / "history.csv")
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", acc=f"{row['train_accuracy']:.2f}",
                        val_acc=f"{row['val_accuracy']:.2f}")
        if stopped:
            break
    bar.close()
    best = load_checkpoint(best_path, map_location=device)
    model.load_state_dict(best["state_dict"])
    model.eval()
    return FoldResult(split.fold, best_epoch, best_metric, len(history), float("nan"), best_path), model
