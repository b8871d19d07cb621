"""How many CPU threads torch should use for one model: small networks train fastest on one
thread (OpenMP threads spin on cores other processes hold); only models with enough work per row
gain from more, and never more than the cores that are free. See `benchmarks/bench_throughput.py`.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

#: Forward multiply-adds per row below which one thread is fastest (measured in bench_throughput.py).
SMALL_MODEL_MACS = 5_000_000
#: Never more than this many threads for one model (the gain flattens out on small batches).
MAX_THREADS = 4


def free_cores() -> int:
    """Cores this process may use (`sched_getaffinity`) minus the 1-minute load average, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return max(1, min(cores, round(cores - load)))


def macs_per_row(model: nn.Module, one_row: torch.Tensor) -> int:
    """Forward multiply-adds for one row, counted by torch's FLOP counter; at least the parameter
    count times the model's members (`config.k`, TabM), for layers the counter does not see (LSTM)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(one_row)
        counted = counter.get_total_flops() // 2
    except (RuntimeError, TypeError, NotImplementedError):
        counted = 0
    finally:
        model.train(was_training)
    n_params = sum(p.numel() for p in model.parameters())
    return int(max(counted, n_params * getattr(getattr(model, "config", None), "k", 1)))


def choose_threads(setting: str | int, model: nn.Module, one_row: torch.Tensor,
                   device: torch.device | str = "cpu") -> int:
    """`train.threads`: a number is used as it is; `auto` gives 1 thread to a small model (under
    `SMALL_MODEL_MACS` per row), else the free cores (at most `MAX_THREADS`). On a GPU: 1."""
    if setting != "auto":
        return int(setting)
    if torch.device(device).type != "cpu" or macs_per_row(model, one_row) < SMALL_MODEL_MACS:
        return 1
    return min(MAX_THREADS, free_cores())


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `torch.set_num_threads(n)`, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
