"""TabM (Gorishniy et al., ICLR 2025): one MLP that holds k weight-sharing members (BatchEnsemble),
with piecewise-linear (or periodic) embeddings of each numeric feature (Gorishniy et al., 2022),
built from the `tabm` and `rtdl_num_embeddings` packages.

`forward` returns the log of the members' *mean probability*: its softmax is the TabM
prediction (probabilities are averaged, as the paper does), so the predictor, ensemble and SHAP
use it like any model's logits. The trainer trains the k members on their own losses through
`member_logits` (the mean loss, not the loss of the mean, as the paper requires). The quantile
bin edges of the piecewise-linear embeddings are part of the config (plain lists computed on the
training rows), so a checkpoint rebuilds the model on its own.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class TabmConfig:
    in_features: int
    n_classes: int
    k: int = 32
    n_blocks: int = 2
    d_block: int = 512
    dropout: float = 0.1
    embedding: str = "piecewise"  # piecewise | periodic | none
    n_bins: int = 48
    d_embedding: int = 16
    bins: list[list[float]] = field(default_factory=list)  # one list of edges per feature (piecewise only)


def piecewise_bins(x_train: torch.Tensor, n_bins: int) -> list[list[float]]:
    """Quantile bin edges per feature of the (normalised) training rows; a constant feature gets
    one bin around its value. Plain lists, so they sit in a `weights_only` checkpoint."""
    x = x_train.detach().float().cpu().flatten(1)
    n_bins = max(2, min(n_bins, len(x) - 1))
    quantiles = torch.quantile(x, torch.linspace(0.0, 1.0, n_bins + 1), dim=0).T
    bins = []
    for column in quantiles:
        edges = column.unique()
        bins.append(edges.tolist() if len(edges) > 1 else [float(edges[0]) - 1.0, float(edges[0]) + 1.0])
    return bins


def _num_embeddings(config: TabmConfig) -> nn.Module | None:
    import rtdl_num_embeddings as rne

    if config.embedding == "none":
        return None
    if config.embedding == "periodic":
        return rne.PeriodicEmbeddings(config.in_features, config.d_embedding, lite=False)
    if config.embedding != "piecewise":
        raise ValueError(f"model.tabm.embedding: {config.embedding!r}; choose piecewise, periodic or none")
    if len(config.bins) != config.in_features:
        raise ValueError(f"TabM piecewise embeddings need bin edges for each of the {config.in_features} features, "
                         f"got {len(config.bins)}; build the config with piecewise_bins(x_train, n_bins)")
    with warnings.catch_warnings():  # a single-bin (constant) feature is fine: it becomes min-max scaling
        warnings.filterwarnings("ignore", message="The .* feature has just two bin edges")
        return rne.PiecewiseLinearEmbeddings([torch.tensor(b, dtype=torch.float32) for b in config.bins],
                                             config.d_embedding, activation=False, version="B")


class Tabm(nn.Module):
    """TabM for `(N, F)` inputs: k members, each a `n_blocks` × `d_block` MLP sharing most weights."""

    Config = TabmConfig

    def __init__(self, config: TabmConfig):
        super().__init__()
        import tabm

        self.config = config
        self.net = tabm.TabM.make(n_num_features=config.in_features, d_out=None,
                                  num_embeddings=_num_embeddings(config), k=config.k, n_blocks=config.n_blocks,
                                  d_block=config.d_block, dropout=config.dropout)
        self.head = tabm.LinearEnsemble(config.d_block, config.n_classes, k=config.k)

    def _members(self, x: torch.Tensor) -> torch.Tensor:
        """The k members' penultimate representations `(N, k, d_block)`."""
        x = x.flatten(1)
        if x.shape[1] != self.config.in_features:
            raise ValueError(f"TabM expects {self.config.in_features} features per track, got {x.shape[1]} "
                             "(was the model trained on a different feature set?)")
        return self.net(x)

    def member_logits(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Each member's logits `(N, k, n_classes)`: the trainer's loss is their mean cross-entropy."""
        return self.head(self._members(x))

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The members' penultimate representations, averaged: `(N, d_block)`."""
        return self._members(x).mean(dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Log of the mean of the k members' probabilities `(N, n_classes)`."""
        log_p = torch.log_softmax(self.member_logits(x).float(), dim=-1)
        return torch.logsumexp(log_p, dim=1) - math.log(self.config.k)
