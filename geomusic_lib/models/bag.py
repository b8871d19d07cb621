"""A bag: the k members of one network trained by k-fold bagging, used as one model.

Its output is the log of the members' mean probabilities, so `softmax(bag(x))` is that mean and
every caller of a single network (the predictor, SHAP, integrated gradients) works unchanged. The
members share one input normalisation (fitted on the features, not the labels, of the rows the bag
saw, as AutoGluon fits its preprocessing before it bags).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class Bag(nn.Module):
    """Mean of the members' class probabilities (returned as log-probabilities)."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("a bag needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def config(self):
        """The first member's config (its `n_classes` is every member's)."""
        return self.members[0].config

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                return_attention: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if return_attention:
            outputs = [member(x, mask, return_attention=True) for member in self.members]
            logits, weights = [o[0] for o in outputs], [o[1].float() for o in outputs]
            return self._mean_log_proba(logits), torch.stack(weights).mean(dim=0)
        return self._mean_log_proba([member(x, mask) for member in self.members])

    def _mean_log_proba(self, logits: Sequence[torch.Tensor]) -> torch.Tensor:
        log_p = torch.stack([torch.log_softmax(z.float(), dim=1) for z in logits])
        return torch.logsumexp(log_p, dim=0) - math.log(len(logits))

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The members' penultimate representations side by side (they are not aligned, so not averaged)."""
        return torch.cat([member.embed(x, mask) for member in self.members], dim=1)
