"""What a sequence network reads at each step: the float channels, embeddings of the categorical token
channels (the last `len(token_vocab)` channels, integer codes such as the notes source's viewpoints),
or both side by side."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

INPUTS = ("floats", "viewpoints", "both")


class StepInput(nn.Module):
    """`(N, T, C)` steps → `(N, T, out_channels)`. With no token channels it passes the steps through."""

    def __init__(self, in_channels: int, token_vocab: Sequence[int] = (), d_token: int = 8, inputs: str = "floats"):
        super().__init__()
        if inputs not in INPUTS:
            raise ValueError(f"unknown inputs {inputs!r}; choose one of {list(INPUTS)}")
        if inputs != "floats" and not token_vocab:
            raise ValueError(f"inputs {inputs!r} needs token channels (the notes source's frames); use inputs 'floats'")
        self.n_tokens, self.inputs = len(token_vocab), inputs
        self.n_floats = in_channels - self.n_tokens
        self.register_buffer("vocab", torch.as_tensor(list(token_vocab) or [1], dtype=torch.long), persistent=False)
        self.embeddings = nn.ModuleList(nn.Embedding(v, d_token) for v in token_vocab) if inputs != "floats" \
            else nn.ModuleList()
        self.out_channels = (self.n_floats if inputs != "viewpoints" else 0) + len(self.embeddings) * d_token

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        floats = x[..., :self.n_floats]
        if self.inputs == "floats":
            return floats
        codes = torch.minimum(x[..., self.n_floats:].round().clamp(min=0).long(), self.vocab - 1)
        embedded = torch.cat([emb(codes[..., i]) for i, emb in enumerate(self.embeddings)], dim=-1)
        return embedded if self.inputs == "viewpoints" else torch.cat([floats, embedded], dim=-1)
