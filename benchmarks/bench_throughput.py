"""Training throughput on CPU. (1) The FCNN with in-memory tensors batched by indexing (the
trainer's loop) against a plain per-item `DataLoader` over the same data and model. (2) Threads:
FCNN, TabM and CNN with 1 and 2 torch threads, alone and next to one competing CPU-bound process,
and the count `train.threads: auto` picks (`geomusic_lib.core.threads`).

    .venv/bin/python benchmarks/bench_throughput.py
    .venv/bin/python benchmarks/bench_throughput.py --skip-loops     # the thread table only
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from geomusic_lib.data import Normalizer, load_uci, make_view
from geomusic_lib.models import build_model, piecewise_bins
from geomusic_lib.core import choose_threads, free_cores, macs_per_row, params_from_dict


def _step(model, optimizer, xb, yb) -> None:
    if hasattr(model, "member_logits"):  # TabM: each member's loss, as the trainer does
        members = model.member_logits(xb)
        loss = nn.functional.cross_entropy(members.flatten(0, 1), yb.repeat_interleave(members.shape[1]))
    else:
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


def _default_models(x: torch.Tensor, y: torch.Tensor, grid_shape) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """FCNN, TabM and CNN at the sizes of params/default.yaml, each with its input view."""
    model, n_classes = params_from_dict({}).model, int(y.max()) + 1
    tabm = model.tabm.model_dump()
    return {
        "fcnn": (build_model("fcnn", {"in_features": x.shape[1], "n_classes": n_classes,
                                      **model.fcnn.model_dump()}), x),
        "tabm": (build_model("tabm", {"in_features": x.shape[1], "n_classes": n_classes, **tabm,
                                      "bins": piecewise_bins(x, tabm["n_bins"])}), x),
        "cnn": (build_model("cnn", {"in_channels": 1, "n_classes": n_classes, "dims": 2,
                                    **model.cnn.model_dump(exclude={"view"})}), make_view("grid", x.numpy(), grid_shape).x),
    }


def _samples_per_s(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seconds: float, batch_size: int) -> float:
    """Training samples/s of `model` over shuffled indexed batches for about `seconds`."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    seen, start = 0, time.perf_counter()
    for xb, yb in _indexed(x, y, 10_000, batch_size):
        _step(model, optimizer, xb, yb)
        seen += len(xb)
        if time.perf_counter() - start > seconds:
            break
    return seen / (time.perf_counter() - start)


def _spin() -> None:
    while True:
        pass


def thread_table(x: torch.Tensor, y: torch.Tensor, grid_shape, seconds: float, batch_size: int) -> None:
    """Samples/s with 1 and 2 torch threads, alone and beside one busy process; and what `auto` picks."""
    models = _default_models(x, y, grid_shape)
    print(f"\nThreads: training samples/s on UCI (batch {batch_size}, about {seconds:.0f} s per cell; "
          f"{len(os.sched_getaffinity(0))} cores, load average before: {os.getloadavg()[0]:.1f})\n")
    print("| model | MACs/row | competing process | 1 thread | 2 threads | auto picks |\n|---|---:|---|---:|---:|---:|")
    for competing in (False, True):
        spinner = multiprocessing.Process(target=_spin, daemon=True) if competing else None
        if spinner:
            spinner.start()
            time.sleep(1.0)
        for name, (model, view) in models.items():
            rates = []
            for threads in (1, 2):
                torch.set_num_threads(threads)
                _samples_per_s(model, view, y, 1.0, batch_size)  # warm-up
                rates.append(_samples_per_s(model, view, y, seconds, batch_size))
            auto = choose_threads("auto", model, view[:1])
            print(f"| {name} | {macs_per_row(model, view[:1]):,} | {'yes' if competing else 'no'} | {rates[0]:,.0f} | "
                  f"{rates[1]:,.0f} | {auto} (free cores {free_cores()}) |", flush=True)
        if spinner:
            spinner.terminate()
            spinner.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="alternating repeats; the median is shown")
    ap.add_argument("--cell-seconds", type=float, default=8.0, help="measuring time per cell of the thread table")
    ap.add_argument("--skip-loops", action="store_true", help="only the thread table")
    args = ap.parse_args()
    table = load_uci()
    x = torch.as_tensor(Normalizer.fit(table.features).transform(table.features))
    y = torch.as_tensor(table.frame["label"].astype("category").cat.codes.to_numpy(np.int64))
    if not args.skip_loops:
        torch.set_num_threads(args.threads)
        loop_table(x, y, args)
    thread_table(x, y, table.grid_shape, args.cell_seconds, args.batch_size)


def loop_table(x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> None:
    """The trainer's indexed batches against a per-item DataLoader (FCNN, median of alternating runs)."""
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
