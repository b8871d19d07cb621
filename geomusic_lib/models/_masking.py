"""Masked softmax and pooling shared by the sequence models (True in a mask = real step)."""
from __future__ import annotations

import torch


def full_mask(x: torch.Tensor) -> torch.Tensor:
    """All-True `(N, T)` mask for an unpadded `(N, T, C)` batch."""
    return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)


def check_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Validate `mask` against `x` `(N, T, C)`; return an all-True mask when it is None."""
    if mask is None:
        return full_mask(x)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {tuple(x.shape[:2])} (batch, steps)")
    mask = mask.bool()
    if not bool(mask.any(dim=1).all()):
        raise ValueError("every sequence needs at least one real step (a mask row is all False)")
    return mask


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 that gives padded steps exactly zero weight."""
    scores = scores.float().masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=1)


def masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `(N, T, C)` over the real steps."""
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


def masked_max(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max of `(N, T, C)` over the real steps."""
    return h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
