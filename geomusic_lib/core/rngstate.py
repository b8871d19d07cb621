"""The random-number state of a training run (torch, the shuffling generator, numpy, CUDA), as plain
values a `weights_only` checkpoint can hold, so a resumed run draws the same numbers."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch


def capture_rng_state(gen: torch.Generator) -> dict[str, Any]:
    """Torch, `gen` (the shuffling generator), numpy and CUDA states, as tensors and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "shuffle": gen.get_state(),
             "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], gen: torch.Generator) -> None:
    """Put back what `capture_rng_state` took."""
    torch.set_rng_state(state["torch"])
    gen.set_state(state["shuffle"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
