"""Model-ready views of the features, with normalisation fitted on the training rows only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from geomusic_lib.data.io import DataError

VIEWS = ("vector", "tokens", "grid", "grid_sequence", "frames")


@dataclass
class Normalizer:
    """Per-feature (or per-channel, for frames) mean and standard deviation."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x_train: np.ndarray | Sequence[np.ndarray], unscaled_last: int = 0) -> "Normalizer":
        """Fit on training rows (a matrix) or training frames (a list of T×C arrays); the last
        `unscaled_last` columns (categorical codes) keep their values (mean 0, std 1)."""
        data = np.concatenate(list(x_train), axis=0) if not isinstance(x_train, np.ndarray) else x_train
        if len(data) == 0:
            raise DataError("cannot fit normalisation on an empty training split.")
        check_finite(data, "training features")
        mean = data.mean(axis=0)
        std = data.std(axis=0)
        std = np.where(std < 1e-8, 1.0, std)
        if unscaled_last:
            mean[-unscaled_last:], std[-unscaled_last:] = 0.0, 1.0
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def to_state(self) -> dict[str, list[float]]:
        """The checkpoint keys `norm_mean` and `norm_std`, as plain lists (loads with weights_only=True)."""
        return {"norm_mean": self.mean.tolist(), "norm_std": self.std.tolist()}

    @classmethod
    def from_state(cls, state: dict) -> "Normalizer":
        """Read `norm_mean` and `norm_std` of a checkpoint (lists or tensors), flattened to 1-D."""
        def vector(value: object) -> np.ndarray:
            return torch.as_tensor(value).numpy().astype(np.float32).ravel()

        return cls(vector(state["norm_mean"]), vector(state["norm_std"]))


@dataclass
class ViewBatch:
    """Model input `x` and an optional boolean `mask` (N, T), True on real steps."""

    x: torch.Tensor
    mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    def index(self, rows: torch.Tensor | np.ndarray) -> "ViewBatch":
        rows = torch.as_tensor(rows, dtype=torch.long)
        return ViewBatch(self.x[rows], None if self.mask is None else self.mask[rows])

    def to(self, device: torch.device | str) -> "ViewBatch":
        return ViewBatch(self.x.to(device), None if self.mask is None else self.mask.to(device))


def check_finite(x: np.ndarray, what: str = "features", names: Sequence[str] | None = None,
                 row_ids: Sequence[object] | None = None,
                 fix: str = "Impute or drop those tracks before training.") -> None:
    """Raise a DataError naming the tracks and columns where `x` (rows first) has NaN or infinite values."""
    bad = ~np.isfinite(np.asarray(x, dtype=float))
    if not bad.any():
        return
    flat = bad.reshape(len(bad), -1)
    rows, cols = np.flatnonzero(flat.any(axis=1)), np.flatnonzero(flat.any(axis=0))
    shown = [names[c] for c in cols[:5]] if names is not None and len(names) == flat.shape[1] else cols[:5].tolist()
    first = f"row {rows[0]}" + (f", track {row_ids[rows[0]]}" if row_ids is not None else "")
    raise DataError(f"{what}: {int(bad.sum())} NaN or infinite value(s) in {len(rows)} track(s) (first: {first}), "
                    f"in column(s) {shown}{' …' if len(cols) > 5 else ''}. {fix}")


def pad_frames(frames: Sequence[np.ndarray], max_len: int | None = None) -> ViewBatch:
    """Zero-pad variable-length (T, C) arrays to (N, T_max, C) with a mask."""
    if not frames:
        raise DataError("no frames to pad.")
    channels = {f.shape[1] for f in frames}
    if len(channels) != 1:
        raise DataError(f"frames have different channel counts {sorted(channels)}; extract them with one setting.")
    t_max = max_len or max(len(f) for f in frames)
    x = np.zeros((len(frames), t_max, channels.pop()), dtype=np.float32)
    mask = np.zeros((len(frames), t_max), dtype=bool)
    for i, f in enumerate(frames):
        n = min(len(f), t_max)
        x[i, :n], mask[i, :n] = f[:n], True
    return ViewBatch(torch.from_numpy(x), torch.from_numpy(mask))


def make_view(
    kind: str,
    x: np.ndarray | None = None,
    grid_shape: Sequence[int] | None = None,
    frames: Sequence[np.ndarray] | None = None,
) -> ViewBatch:
    """Shape normalised features for a model: see CONTRIBUTING.md for each view's layout."""
    if kind not in VIEWS:
        raise ValueError(f"unknown view {kind!r}; choose one of {VIEWS}")
    if kind == "frames":
        if frames is None:
            raise DataError("the 'frames' view needs frame sequences (audio-analysis segments or audio frames); "
                            "extract them with features.source: audio or spotify + audio_analysis.")
        return pad_frames(frames)
    if x is None:
        raise ValueError(f"view {kind!r} needs a feature matrix")
    check_finite(x)
    t = torch.from_numpy(np.array(x, dtype=np.float32, copy=True))
    if kind == "vector":
        return ViewBatch(t)
    if kind == "tokens":
        return ViewBatch(t.unsqueeze(-1))
    if grid_shape is None or int(np.prod(grid_shape)) != t.shape[1]:
        raise DataError(f"view {kind!r} needs a grid_shape whose product is the feature count {t.shape[1]}, got {grid_shape}. "
                        "Only sources with a statistics × descriptors layout (UCI) support it; use 'tokens' otherwise.")
    h, w = grid_shape
    grid = t.reshape(-1, h, w)
    return ViewBatch(grid.unsqueeze(1)) if kind == "grid" else ViewBatch(grid.transpose(1, 2).contiguous())
