"""Bidirectional LSTM over steps `(N, T, C)`, packed by length so padding never changes the result."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from geomusic_lib.models._masking import check_mask, masked_mean
from geomusic_lib.models._tokens import StepInput


@dataclass
class RnnConfig:
    in_channels: int
    n_classes: int
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.3
    bidirectional: bool = True
    inputs: str = "floats"                 # floats | viewpoints | both (models/_tokens.py)
    d_token: int = 8
    token_vocab: list[int] = field(default_factory=list)   # the last channels' vocabulary sizes


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run `lstm` on `(N, T, C)`; returns (outputs `(N, T, D·H)` zero at padding, last-layer final states, mask)."""
    full = mask is None or bool(mask.all())
    mask = check_mask(x, mask)
    if full:
        out, (h_n, _) = lstm(x)
    else:
        lengths = mask.sum(1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, _) = lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    n_dir = 2 if lstm.bidirectional else 1
    final = h_n[-n_dir:].transpose(0, 1).reshape(x.shape[0], -1)  # (N, D·H): last layer, every direction
    return out, final, mask


class BiLstm(nn.Module):
    """Stacked (bi)LSTM; the embedding joins the final states with the masked mean of all outputs."""

    Config = RnnConfig

    def __init__(self, config: RnnConfig):
        super().__init__()
        self.config = config
        self.steps = StepInput(config.in_channels, config.token_vocab, config.d_token, config.inputs)
        self.lstm = nn.LSTM(self.steps.out_channels, config.hidden, num_layers=config.layers, batch_first=True,
                            bidirectional=config.bidirectional, dropout=config.dropout if config.layers > 1 else 0.0)
        width = config.hidden * (2 if config.bidirectional else 1)
        self.norm = nn.LayerNorm(2 * width)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * width, config.n_classes)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 3 or x.shape[2] != self.config.in_channels:
            raise ValueError(f"BiLSTM expects (N, T, {self.config.in_channels}) steps, got shape {tuple(x.shape)}")
        out, final, mask = run_lstm(self.lstm, self.steps(x), mask)
        return self.norm(torch.cat([final, masked_mean(out, mask)], dim=1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x, mask)))
