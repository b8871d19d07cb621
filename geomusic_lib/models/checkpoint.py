"""Self-contained checkpoints: plain dicts of tensors, lists and numbers that load with
`torch.load(path, weights_only=True)` (no pickled objects), written atomically."""
from __future__ import annotations

import hashlib
import json
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from geomusic_lib.core.fileio import atomic_write_with
from geomusic_lib.models import build_model

FORMAT_VERSION = 2  # 2: a bag of k members (`models.Bag`, train.bagging.folds > 1) is one checkpoint; 1 loads too
TRAINER_FILES = ("checkpoint_best.pt", "checkpoint_last.pt")  # written by geomusic_lib.training.trainer, one pair per folder
REQUIRED_KEYS = ("format_version", "model_name", "model_config", "state_dict", "classes", "feature_names", "view")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, or not a geomusic checkpoint."""


def save_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> Path:
    """Write `checkpoint` to `path` via a temporary file, so a kill never leaves a half-written file."""
    return atomic_write_with(path, lambda tmp: torch.save(checkpoint, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`; any failure becomes a `CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found. Train the model first (notebooks 03-06 or geomusic_lib.training.trainer.train_model).")
    try:
        with warnings.catch_warnings():  # torch's note on a bare pickle's protocol: our message says more
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as err:
        raise CheckpointError(_unreadable_message(path, err)) from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
        raise CheckpointError(f"{path}: not a geomusic checkpoint (missing keys {missing}).")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {ckpt['format_version']} is newer than this library "
                              f"supports ({FORMAT_VERSION}); upgrade geomusic.")
    return ckpt


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _unreadable_message(path: Path, err: Exception) -> str:
    """One line: refused for safety (pickled objects), or truncated/corrupt with what to delete."""
    with path.open("rb") as handle:
        head = handle.read(2)
    is_pickle_or_zip = head == b"PK" or head[:1] == b"\x80"  # torch's zip format, or a bare pickle
    if isinstance(err, pickle.UnpicklingError) and str(err).startswith("Weights only load failed") and is_pickle_or_zip:
        return (f"{path}: contains pickled Python objects and was refused for safety (geomusic checkpoints hold "
                "only tensors and plain values); re-create it with this version of geomusic.")
    if not head:
        reason = "the file is empty"
    elif not is_pickle_or_zip:
        reason = "not a PyTorch checkpoint file"
    else:
        first = _ANSI.sub("", str(err)).strip().split(". ")[0].splitlines()
        reason = f"{type(err).__name__}: {first[0][:160]}" if first else type(err).__name__
    if path.name in TRAINER_FILES:
        fix = (f"delete the folder {path.parent} and rerun the same command: that model (or fold) is trained "
               "again from scratch.")
    else:
        fix = "copy it again or re-create it by training with geomusic."
    return f"{path}: not a readable geomusic checkpoint, truncated or corrupt ({reason}); {fix}"


def model_from_checkpoint(checkpoint: dict[str, Any], device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model of a loaded checkpoint, with its weights, in eval mode."""
    model = build_model(checkpoint["model_name"], checkpoint["model_config"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()


def fingerprint(model_name: str, hyperparameters: Mapping[str, Any], train: Mapping[str, Any], seed: int,
                fold: int, rows: Mapping[str, Sequence[int]], feature_names: Sequence[str]) -> str:
    """What must match for a checkpoint to be resumed or reused: model, its settings, training
    settings, seed, the split's rows and the features (plain values, hashed)."""
    payload = {"model": model_name, "hp": dict(hyperparameters), "train": dict(train), "seed": seed, "fold": fold,
               "rows": [list(map(int, rows[part])) for part in ("train", "val", "test")],
               "features": list(feature_names)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def check_fingerprint(checkpoint: dict[str, Any], expected: str, path: str | Path, fix: str) -> None:
    """Raise a `CheckpointError` when a checkpoint was trained with other settings, split or features."""
    if checkpoint.get("fingerprint") != expected:
        raise CheckpointError(f"{path}: trained with other settings, splits or features than this run's params; {fix}")
