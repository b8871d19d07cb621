"""Running a network on prepared inputs: the one device resolver and batched probabilities.
Shared by the trainer and the predictor (neither imports the other)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from geomusic_lib.data.views import ViewBatch


def resolve_device(device: str | torch.device) -> torch.device:
    """`auto` → CUDA when present, else CPU; `cuda` without a GPU is an error that says what to use."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but no CUDA GPU is available; use device: auto or cpu")
    return torch.device(device)


@torch.no_grad()
def batch_probabilities(model: nn.Module, batch: ViewBatch, rows: np.ndarray | None = None, batch_size: int = 512,
                        device: torch.device | str = "cpu") -> np.ndarray:
    """Class probabilities `(n, K)` for `rows` of `batch` (all rows when None), in eval mode."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    model.eval()
    rows_t = torch.arange(len(batch)) if rows is None else torch.as_tensor(rows, dtype=torch.long)
    out = []
    for start in range(0, len(rows_t), batch_size):
        part = batch.index(rows_t[start:start + batch_size]).to(device)
        out.append(torch.softmax(model(part.x, part.mask).float(), dim=1).cpu())
    n_classes = getattr(model.config, "n_classes")
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, n_classes))
