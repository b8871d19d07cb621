"""FCNN training throughput on CPU: in-memory tensors batched by indexing (the trainer's
loop) against a plain per-item `DataLoader` over the same data and model.

    .venv/bin/python benchmarks/bench_throughput.py
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from geomusic_lib.data import Normalizer, load_uci
from geomusic_lib.models import build_model


def _step(model, optimizer, xb, yb) -> None:
    loss = nn.functional.cross_entropy(model(xb), yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def _indexed(x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int):
    """Shuffled batches of in-memory tensors, by indexing (as the trainer batches)."""
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            yield x[idx], y[idx]


def indexed_epochs(x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = build_model("fcnn", {"in_features": x.shape[1], "n_classes": int(y.max()) + 1}).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for xb, yb in _indexed(x, y, epochs, batch_size):
        if len(xb) > 1:
            _step(model, optimizer, xb, yb)
    return epochs * len(x) / (time.perf_counter() - start)


def dataloader_epochs(x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = build_model("fcnn", {"in_features": x.shape[1], "n_classes": int(y.max()) + 1}).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, drop_last=False,
                        generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            if len(xb) > 1:
                _step(model, optimizer, xb, yb)
    return epochs * len(x) / (time.perf_counter() - start)


def indexed_batches(x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int) -> float:
    """Batch assembly alone (no model): samples/s of shuffling and indexing in-memory tensors."""
    start = time.perf_counter()
    for _batch in _indexed(x, y, epochs, batch_size):
        pass
    return epochs * len(x) / (time.perf_counter() - start)


def dataloader_batches(x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int) -> float:
    """Batch assembly alone (no model) with a per-item `DataLoader`."""
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    for _ in range(epochs):
        for _batch in loader:
            pass
    return epochs * len(x) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="alternating repeats; the median is shown")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    table = load_uci()
    x = torch.as_tensor(Normalizer.fit(table.features).transform(table.features))
    y = torch.as_tensor(table.frame["label"].astype("category").cat.codes.to_numpy(np.int64))
    indexed_epochs(x, y, 1, args.batch_size)  # warm-up
    loops = {
        "training, in-memory tensors batched by indexing (the trainer)": indexed_epochs,
        "training, per-item `DataLoader(TensorDataset)`": dataloader_epochs,
        "batches only, indexing": indexed_batches,
        "batches only, per-item `DataLoader`": dataloader_batches,
    }
    runs: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.repeats):  # alternate, so that drift in machine load hits both loops alike
        for name, loop in loops.items():
            runs[name].append(loop(x, y, args.epochs, args.batch_size))
    median = {name: float(np.median(v)) for name, v in runs.items()}
    print(f"FCNN (default size) on UCI ({len(x)} tracks, batch {args.batch_size}, {args.epochs} epochs, median of "
          f"{args.repeats} alternating runs, {args.threads} torch thread(s), torch {torch.__version__}, CPU)\n")
    print("| loop | samples/s (median) | range |\n|---|---:|---:|")
    for name, values in runs.items():
        print(f"| {name} | {median[name]:,.0f} | {min(values):,.0f}–{max(values):,.0f} |")
    names = list(loops)
    print(f"\nspeed-up, training: {median[names[0]] / median[names[1]]:.2f}×; "
          f"batch assembly alone: {median[names[2]] / median[names[3]]:.1f}×")


if __name__ == "__main__":
    main()
