"""Fully connected network on the flat feature vector: Linear → BatchNorm → ReLU → Dropout blocks."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class FcnnConfig:
    in_features: int
    n_classes: int
    hidden: list[int] = field(default_factory=lambda: [256, 128, 64])
    dropout: float = 0.3


class Fcnn(nn.Module):
    """MLP for `(N, F)` inputs; anything with more dimensions is flattened to `(N, F)`."""

    Config = FcnnConfig

    def __init__(self, config: FcnnConfig):
        super().__init__()
        if not config.hidden:
            raise ValueError("model.fcnn.hidden must list at least one layer width, e.g. [256, 128, 64]")
        self.config = config
        layers: list[nn.Module] = []
        width = config.in_features
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.BatchNorm1d(size), nn.ReLU(), nn.Dropout(config.dropout)]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, config.n_classes)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x.flatten(1)
        if x.shape[1] != self.config.in_features:
            raise ValueError(
                f"FCNN expects {self.config.in_features} features per track, got {x.shape[1]} "
                "(was the model trained on a different feature set?)"
            )
        return self.body(x)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.embed(x, mask))
