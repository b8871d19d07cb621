"""LSTM with attention pooling: `additive` (Bahdanau), `dot` (scaled, learned query) or `self`
(multi-head self-attention over the LSTM states, then learned-query pooling)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from geomusic_lib.models._masking import masked_softmax
from geomusic_lib.models._tokens import StepInput
from geomusic_lib.models.rnn import run_lstm

ATTENTION_TYPES = ("self", "additive", "dot")


@dataclass
class AttentionConfig:
    in_channels: int
    n_classes: int
    hidden: int = 128
    layers: int = 1
    attention: str = "additive"
    heads: int = 4
    dropout: float = 0.3
    inputs: str = "floats"                 # floats | viewpoints | both (models/_tokens.py)
    d_token: int = 8
    token_vocab: list[int] = field(default_factory=list)   # the last channels' vocabulary sizes

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_TYPES:
            raise ValueError(f"unknown attention type {self.attention!r}; choose one of {list(ATTENTION_TYPES)}")
        if self.attention == "self" and (2 * self.hidden) % self.heads:
            raise ValueError(f"self attention: 2 × hidden ({2 * self.hidden}) must be divisible by heads ({self.heads})")


class AttentionLstm(nn.Module):
    """BiLSTM states → attention weights `(N, T)` that sum to 1 over real steps → weighted sum → classes."""

    Config = AttentionConfig

    def __init__(self, config: AttentionConfig):
        super().__init__()
        self.config = AttentionConfig(**vars(config))  # re-validate
        width = 2 * config.hidden
        self.steps = StepInput(config.in_channels, config.token_vocab, config.d_token, config.inputs)
        self.lstm = nn.LSTM(self.steps.out_channels, config.hidden, num_layers=config.layers, batch_first=True,
                            bidirectional=True, dropout=config.dropout if config.layers > 1 else 0.0)
        if config.attention == "self":
            self.self_attn = nn.MultiheadAttention(width, config.heads, dropout=config.dropout, batch_first=True)
            self.self_norm = nn.LayerNorm(width)
        if config.attention == "additive":
            self.score_proj = nn.Linear(width, width)
            self.score_vec = nn.Linear(width, 1, bias=False)
        else:
            self.query = nn.Parameter(torch.randn(width) / math.sqrt(width))
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(width, config.n_classes)

    def _attend(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[2] != self.config.in_channels:
            raise ValueError(f"attention model expects (N, T, {self.config.in_channels}) steps, got shape {tuple(x.shape)}")
        h, _, mask = run_lstm(self.lstm, self.steps(x), mask)
        if self.config.attention == "self":
            ctx, _ = self.self_attn(h, h, h, key_padding_mask=~mask, need_weights=False)
            h = self.self_norm(h + ctx)
        if self.config.attention == "additive":
            scores = self.score_vec(torch.tanh(self.score_proj(h))).squeeze(-1)
        else:
            scores = h @ self.query / math.sqrt(h.shape[-1])
        weights = masked_softmax(scores, mask)
        pooled = torch.bmm(weights.unsqueeze(1).to(h.dtype), h).squeeze(1)
        return self.norm(pooled), weights

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self._attend(x, mask)[0]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                return_attention: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        pooled, weights = self._attend(x, mask)
        logits = self.head(self.dropout(pooled))
        return (logits, weights) if return_attention else logits
