"""Fully connected network on the flat feature vector, with optional ingredients of RealMLP-TD
(Holzmüller et al., NeurIPS 2024, "Better by default"; reference implementation pytabkit):

input (N, F) → [robust scaling + smooth clipping] → [numerical embeddings: PBLD or piecewise-linear]
→ [learnable diagonal scale] → blocks of Linear → [BatchNorm] → activation → Dropout → Linear head.

The robust centre and scale (median and 1 / inter-quartile range of the training rows) and the
piecewise bin edges are plain lists in the config (`fcnn_statistics`, computed by
`training.setup.model_config` on the training rows), so a checkpoint rebuilds the model on its own
and loads with `weights_only=True`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu, "selu": F.selu, "silu": F.silu, "mish": F.mish, "gelu": F.gelu}
EMBEDDINGS = ("none", "pbld", "piecewise")


@dataclass
class FcnnConfig:
    in_features: int
    n_classes: int
    hidden: list[int] = field(default_factory=lambda: [256, 128, 64])
    dropout: float = 0.3
    robust_clip: bool = False  # (x - median) / IQR, then x / sqrt(1 + (x/3)^2): bounded in (-3, 3)
    embedding: str = "none"  # none | pbld (periodic, RealMLP) | piecewise (linear, rtdl_num_embeddings)
    d_embedding: int = 4  # outputs per feature (pbld: the feature itself and d_embedding - 1 periodic ones)
    n_bins: int = 16  # quantile bins per feature (piecewise)
    front_scale: bool = False  # a learnable per-input scale (initialised to 1) before the first layer
    activation: str = "relu"  # relu | selu | silu | mish | gelu | prelu
    parametric: bool = False  # RealMLP's x + a * (f(x) - x), one a per unit (initialised to 1)
    batch_norm: bool = True
    center: list[float] = field(default_factory=list)  # robust_clip: per-feature median of the training rows
    scale: list[float] = field(default_factory=list)  # robust_clip: per-feature 1 / IQR (0 for a constant one)
    bins: list[list[float]] = field(default_factory=list)  # piecewise: edges per feature (of the clipped input)


def smooth_clip(x: torch.Tensor) -> torch.Tensor:
    """RealMLP's smooth clipping x / sqrt(1 + (x/3)^2): about x near 0, bounded by 3 (hypot: no overflow)."""
    return x / torch.hypot(x / 3, x.new_ones(()))


def robust_statistics(x_train: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-feature median and 1 / IQR (half the range when the IQR is 0; 0 for a constant feature)."""
    q25, q50, q75 = np.quantile(x_train, [0.25, 0.5, 0.75], axis=0)
    iqr = np.where(q75 - q25 > 0, q75 - q25, 0.5 * (x_train.max(axis=0) - x_train.min(axis=0)))
    scale = np.where(iqr > 0, 1.0 / np.where(iqr > 0, iqr, 1.0), 0.0)
    return q50.astype(float).tolist(), scale.astype(float).tolist()


def fcnn_statistics(x_train: torch.Tensor, hp: dict[str, Any]) -> dict[str, Any]:
    """The config entries that the training rows decide: robust centre and scale, and piecewise bins
    (of the robust-clipped rows, where the embedding sees them)."""
    from geomusic_lib.models.tabm import piecewise_bins

    x = x_train.detach().float().cpu().flatten(1)
    stats: dict[str, Any] = {"center": [], "scale": [], "bins": []}
    if hp.get("robust_clip"):
        stats["center"], stats["scale"] = robust_statistics(x.numpy().astype(np.float64))
        x = smooth_clip((x - torch.tensor(stats["center"])) * torch.tensor(stats["scale"]))
    if hp.get("embedding") == "piecewise":
        stats["bins"] = piecewise_bins(x, hp.get("n_bins", 16))
    return stats


class Pbld(nn.Module):
    """RealMLP's PBLD embedding per feature: Periodic (cos with a learnable frequency and phase),
    Bias, Linear to `d - 1` values, DenseNet-style concatenation of the feature itself."""

    def __init__(self, n_features: int, d: int, hidden: int = 16, sigma: float = 0.1):
        super().__init__()
        if d < 2:
            raise ValueError(f"model.fcnn.d_embedding: {d}; PBLD needs at least 2 (the feature and one periodic)")
        self.w1 = nn.Parameter(sigma * torch.randn(n_features, 1, hidden))
        self.b1 = nn.Parameter(math.pi * (2 * torch.rand(n_features, 1, hidden) - 1))
        self.w2 = nn.Parameter((2 * torch.rand(n_features, hidden, d - 1) - 1) / math.sqrt(hidden))
        self.b2 = nn.Parameter((2 * torch.rand(n_features, 1, d - 1) - 1) / math.sqrt(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.T.unsqueeze(-1)  # (F, N, 1)
        z = torch.cos(2 * math.pi * z @ self.w1 + self.b1) @ self.w2 + self.b2  # (F, N, d - 1)
        return torch.cat([z.transpose(0, 1).flatten(1), x], dim=1)


class Scale(nn.Module):
    """A learnable diagonal scaling, initialised to 1."""

    def __init__(self, width: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class ParametricActivation(nn.Module):
    """`x + a * (f(x) - x)` with one learnable `a` per unit, initialised to 1 (so it starts as f)."""

    def __init__(self, f: Callable[[torch.Tensor], torch.Tensor], width: int):
        super().__init__()
        self.f, self.weight = f, nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.weight * (self.f(x) - x)


def _activation(config: FcnnConfig, width: int) -> nn.Module:
    if config.activation == "prelu":
        return nn.PReLU(width)
    if config.activation not in ACTIVATIONS:
        raise ValueError(f"model.fcnn.activation: {config.activation!r}; choose one of "
                         f"{sorted([*ACTIVATIONS, 'prelu'])}")
    f = ACTIVATIONS[config.activation]
    if config.parametric:
        return ParametricActivation(f, width)
    return {"relu": nn.ReLU, "selu": nn.SELU, "silu": nn.SiLU, "mish": nn.Mish, "gelu": nn.GELU}[config.activation]()


def _embedding(config: FcnnConfig) -> tuple[nn.Module | None, int]:
    """The numerical embedding and the width it hands to the first layer."""
    n, d = config.in_features, config.d_embedding
    if config.embedding == "none":
        return None, n
    if config.embedding == "pbld":
        return Pbld(n, d), n * d
    if config.embedding != "piecewise":
        raise ValueError(f"model.fcnn.embedding: {config.embedding!r}; choose one of {list(EMBEDDINGS)}")
    if len(config.bins) != n:
        raise ValueError(f"FCNN piecewise embeddings need bin edges for each of the {n} features, got "
                         f"{len(config.bins)}; build the config with fcnn_statistics(x_train, ...)")
    import rtdl_num_embeddings as rne

    with warnings.catch_warnings():  # a single-bin (constant) feature is fine: it becomes min-max scaling
        warnings.filterwarnings("ignore", message="The .* feature has just two bin edges")
        emb = rne.PiecewiseLinearEmbeddings([torch.tensor(b, dtype=torch.float32) for b in config.bins], d,
                                            activation=False, version="B")
    return nn.Sequential(emb, nn.Flatten(1)), n * d


class Fcnn(nn.Module):
    """MLP for `(N, F)` inputs; anything with more dimensions is flattened to `(N, F)`."""

    Config = FcnnConfig

    def __init__(self, config: FcnnConfig):
        super().__init__()
        if not config.hidden:
            raise ValueError("model.fcnn.hidden must list at least one layer width, e.g. [256, 128, 64]")
        self.config = config
        if config.robust_clip:
            if len(config.center) != config.in_features or len(config.scale) != config.in_features:
                raise ValueError(f"FCNN robust_clip needs a centre and scale for each of the {config.in_features} "
                                 "features; build the config with fcnn_statistics(x_train, ...)")
            self.register_buffer("center", torch.tensor(config.center, dtype=torch.float32), persistent=False)
            self.register_buffer("scale", torch.tensor(config.scale, dtype=torch.float32), persistent=False)
        self.embedding, width = _embedding(config)
        self.front = Scale(width) if config.front_scale else nn.Identity()
        layers: list[nn.Module] = []
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.BatchNorm1d(size) if config.batch_norm else nn.Identity(),
                       _activation(config, size), nn.Dropout(config.dropout)]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, config.n_classes)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The last hidden layer's output `(N, hidden[-1])`."""
        x = x.flatten(1)
        if x.shape[1] != self.config.in_features:
            raise ValueError(
                f"FCNN expects {self.config.in_features} features per track, got {x.shape[1]} "
                "(was the model trained on a different feature set?)"
            )
        if self.config.robust_clip:
            x = smooth_clip((x - self.center) * self.scale)
        if self.embedding is not None:
            x = self.embedding(x)
        return self.body(self.front(x))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.embed(x, mask))
