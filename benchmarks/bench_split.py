"""The grouped, stratified split alone: sklearn's StratifiedGroupKFold vs the vectorised `assign_groups`
(`geomusic_lib.data.splits`), on a synthetic per-track table shaped like MIRAGE at 1M events.

The table (seeded): `--rows` tracks, `--groups` artists (every artist has a track; the other tracks
go to artists by Zipf weights 1/rank^s, `--zipf`; 1.0 as in `make_mirage_synthetic.py`), `--classes`
countries of Zipf(0.9) sizes; each artist has a home country and 80 % of its tracks carry it, the
rest any country. Per method and strategy (holdout 70/10/20, k folds with validation carved from
each fold's rest): wall and CPU seconds of `make_splits` (group names, codes, split, gap check) and
the largest gap between a class's share in any part and its share overall (`share_deviation`), in
percentage points and relative to the class's share.

    python benchmarks/bench_split.py                                  # 1M rows, 99K groups, 200 classes
    python benchmarks/bench_split.py --rows 100000 --groups 10000 --methods fast sklearn --strategies kfold

sklearn's k-fold at 1M rows takes many minutes (it loops over the groups once per fold and carve);
`--sklearn-max-rows` (default 200K) skips it above that size. Writes `benchmarks/out/split.md`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "out" / "split.md"


def synthetic_table(rows: int, groups: int, classes: int, zipf: float, seed: int) -> pd.DataFrame:
    """`track_id, label, group` of a seeded table with Zipf group and class sizes (module docstring)."""
    rng = np.random.default_rng(seed)
    class_w = 1 / np.arange(1, classes + 1) ** 0.9
    class_w /= class_w.sum()
    home = rng.choice(classes, groups, p=class_w)
    group_w = 1 / rng.permutation(np.arange(1, groups + 1)) ** zipf
    group = np.concatenate([np.arange(groups), rng.choice(groups, rows - groups, p=group_w / group_w.sum())])
    rng.shuffle(group)
    label = np.where(rng.random(rows) < 0.8, home[group], rng.choice(classes, rows, p=class_w))
    return pd.DataFrame({"track_id": pd.Series(np.arange(rows)).map("t{}".format),
                         "label": pd.Series(label).map("c{:03d}".format), "group": pd.Series(group).map("a{}".format)})


def measure(frame: pd.DataFrame, method: str, strategy: str, folds: int, seed: int) -> dict[str, float]:
    """`make_splits` with the method forced through `FAST_SPLIT_MIN_GROUPS`: seconds and share gaps."""
    from geomusic_lib.core import SplitParams
    from geomusic_lib.data import splits

    saved = splits.FAST_SPLIT_MIN_GROUPS
    splits.FAST_SPLIT_MIN_GROUPS = 0 if method == "fast" else sys.maxsize
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        made = splits.make_splits(frame, SplitParams(strategy=strategy, folds=folds), seed)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        splits.FAST_SPLIT_MIN_GROUPS = saved
    labels = frame["label"].to_numpy(dtype=str)
    return {"wall": wall, "cpu": cpu, "gap_pp": 100 * splits.share_deviation(labels, made),
            "gap_rel": splits.share_deviation(labels, made, relative=True),
            "mean_pp": 100 * float(splits.share_gaps(labels, made).mean())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--groups", type=int, default=99_000)
    ap.add_argument("--classes", type=int, default=200)
    ap.add_argument("--zipf", type=float, default=1.0, help="exponent s of the group sizes' Zipf law")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", nargs="+", choices=["fast", "sklearn"], default=["fast", "sklearn"])
    ap.add_argument("--strategies", nargs="+", choices=["holdout", "kfold"], default=["holdout", "kfold"])
    ap.add_argument("--sklearn-max-rows", type=int, default=200_000, help="skip sklearn's k-fold above this")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    frame = synthetic_table(args.rows, args.groups, args.classes, args.zipf, args.seed)
    sizes = frame.groupby("group").size()
    head = (f"{len(frame):,} rows, {len(sizes):,} groups (largest {sizes.max():,} rows, median {sizes.median():.0f}), "
            f"{frame['label'].nunique()} classes, group sizes Zipf s = {args.zipf}, seed {args.seed}; "
            f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} at the start")
    lines = [head, "", "| method | strategy | wall s | CPU s | largest share gap (pp) | relative to the class's share | mean gap (pp) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    print(head, flush=True)
    for strategy in args.strategies:
        for method in args.methods:
            if method == "sklearn" and strategy == "kfold" and len(frame) > args.sklearn_max_rows:
                continue
            m = measure(frame, method, strategy, args.folds, args.seed)
            name = strategy if strategy == "holdout" else f"{args.folds}-fold"
            lines.append(f"| {method} | {name} | {m['wall']:.1f} | {m['cpu']:.1f} | {m['gap_pp']:.2f} | {m['gap_rel']:.2f} | {m['mean_pp']:.3f} |")
            print(lines[-1], flush=True)
    lines.append(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(lines[-1])


if __name__ == "__main__":
    main()
