"""Convolutional network: 4 conv blocks and adaptive pooling, 2-D on `grid` images, 1-D on step sequences."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from geomusic_lib.models._masking import check_mask, masked_max, masked_mean
from geomusic_lib.models._tokens import StepInput


@dataclass
class CnnConfig:
    in_channels: int
    n_classes: int
    dims: int = 2  # 2: (N, C, H, W) grid image; 1: (N, T, C) steps with an optional mask
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    kernel_size: int = 3
    dropout: float = 0.3
    inputs: str = "floats"                 # 1-D only: floats | viewpoints | both (models/_tokens.py)
    d_token: int = 8
    token_vocab: list[int] = field(default_factory=list)   # the last channels' vocabulary sizes


class Cnn(nn.Module):
    """Conv → BatchNorm → ReLU blocks, max-pooling by 2 along the long axis between blocks.

    2-D: the UCI grid is only 4 statistics high, so pooling halves the width (descriptors)
    only. 1-D: padded steps are zeroed after every block and the pooled mask follows the
    data, so extra padding never changes the output.
    """

    Config = CnnConfig

    def __init__(self, config: CnnConfig):
        super().__init__()
        if config.dims not in (1, 2):
            raise ValueError(f"CNN dims must be 1 (frames/tokens) or 2 (grid), got {config.dims}")
        if not config.channels:
            raise ValueError("model.cnn.channels must list at least one block width, e.g. [32, 64, 128, 128]")
        self.config = config
        conv = nn.Conv2d if config.dims == 2 else nn.Conv1d
        norm = nn.BatchNorm2d if config.dims == 2 else nn.BatchNorm1d
        self.steps = StepInput(config.in_channels, config.token_vocab if config.dims == 1 else [], config.d_token,
                               config.inputs)
        blocks, width = [], self.steps.out_channels
        for size in config.channels:
            blocks.append(nn.Sequential(conv(width, size, config.kernel_size, padding=config.kernel_size // 2, bias=False),
                                        norm(size), nn.ReLU()))
            width = size
        self.blocks = nn.ModuleList(blocks)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * width, config.n_classes)

    def _check(self, x: torch.Tensor) -> None:
        want = self.config.dims + 2
        if x.dim() != want:
            layout = "(N, C, H, W)" if self.config.dims == 2 else "(N, T, C)"
            raise ValueError(f"{self.config.dims}-D CNN expects a {want}-D input {layout}, got shape {tuple(x.shape)}")
        channels = x.shape[1] if self.config.dims == 2 else x.shape[2]
        if channels != self.config.in_channels:
            raise ValueError(f"CNN expects {self.config.in_channels} input channel(s), got {channels} (input shape {tuple(x.shape)})")

    def _embed_2d(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < last and x.shape[-1] > 1:
                x = F.max_pool2d(x, (1, 2), ceil_mode=True)
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)

    def _embed_1d(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        mask = check_mask(x, mask)
        x = self.steps(x)
        n_pool = len(self.blocks) - 1
        pad = (-x.shape[1]) % (2 ** n_pool)  # align pooling windows whatever the padded length
        h = F.pad(x, (0, 0, 0, pad)).transpose(1, 2)  # (N, C, T)
        m = F.pad(mask, (0, pad)).unsqueeze(1).to(h.dtype)  # (N, 1, T)
        h = h * m
        for i, block in enumerate(self.blocks):
            h = block(h) * m  # ReLU output ≥ 0, so zeroed padding never wins a max-pool
            if i < n_pool:
                h, m = F.max_pool1d(h, 2), F.max_pool1d(m, 2)
        h, m = h.transpose(1, 2), m.squeeze(1) > 0
        return torch.cat([masked_mean(h, m), masked_max(h, m)], dim=1)

    def embed(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self._check(x)
        return self._embed_2d(x) if self.config.dims == 2 else self._embed_1d(x, mask)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x, mask)))
