"""10-fold stratified CV on UCI for every model and baseline: top-1 accuracy and mean
great-circle error (km), with the arg-max and the distance-aware decision.

    .venv/bin/python benchmarks/bench_uci_cv.py            # full run (about 15 min on 2 CPU cores)
    .venv/bin/python benchmarks/bench_uci_cv.py --folds 3 --epochs 5   # quick look

Writes the markdown table to `benchmarks/out/uci_cv.md` (the README's results section pastes
it). Runs resume: models already trained under `benchmarks/out/uci_cv_run/` with the same
params are reused.
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import pandas as pd

from geomusic_lib.baselines import run_baselines
from geomusic_lib.data import load_uci, make_splits
from geomusic_lib.data.store import class_table
from geomusic_lib.evaluate import evaluate_predictions
from geomusic_lib.params import load_params
from geomusic_lib.results import Predictions, read_predictions
from geomusic_lib.train import train_model

HERE = Path(__file__).resolve().parent
MODELS = ["fcnn", "cnn", "attention", "rnn"]
BASELINES = ["majority", "logreg", "random_forest", "hist_gb"]
#: Fixed before looking at test folds: every network and every non-trivial baseline, equal weights.
ENSEMBLE = ["fcnn", "cnn", "rnn", "attention", "logreg", "random_forest", "hist_gb"]


def _scores(pred: Predictions, classes: pd.DataFrame, seed: int) -> dict[str, float]:
    """Accuracy and mean great-circle error with 95 % bootstrap intervals, for both decisions."""
    out = {}
    for decision in ("argmax", "distance"):
        m = evaluate_predictions(pred, classes, decision=decision, bootstrap=1000, seed=seed)
        for key, short in (("accuracy", "acc"), ("mean_km", "km")):
            out[f"{short}_{decision}"] = (m[key], m[f"{key}_ci_low"], m[f"{key}_ci_high"])
        out["top5"] = m["top5_accuracy"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--params", type=Path, default=HERE.parent / "params" / "default.yaml",
                    help="model and training settings (default: the book's); the split is replaced by k folds")
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs (e.g. 5 for a quick look)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--baselines", nargs="*", default=BASELINES)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(args.threads)

    table = load_uci()
    overrides = {"seed": args.seed, "device": "cpu", "split": {"strategy": "kfold", "folds": args.folds}}
    if args.epochs:
        overrides["train"] = {"epochs": args.epochs}
    params = load_params(args.params, overrides)
    splits = make_splits(table.frame, params.split, params.seed)
    run_dir = args.out / "uci_cv_run" / "models"
    classes = class_table(table.frame)

    rows, probas, seconds = {}, {}, {}
    t0 = time.perf_counter()
    for name in args.baselines:
        t = time.perf_counter()
        run_baselines(table, splits, params, run_dir, names=[name], progress=False)
        print(f"{name}: {time.perf_counter() - t:.0f} s", flush=True)
        seconds[name] = time.perf_counter() - t
    for name in args.models:
        t = time.perf_counter()
        train_model(name, table, splits, params, run_dir / name, progress=False)
        print(f"{name}: {time.perf_counter() - t:.0f} s", flush=True)
        seconds[name] = time.perf_counter() - t
    reference = None
    for name in [*args.baselines, *args.models]:
        pred = read_predictions(run_dir / name / "predictions.parquet")
        order = np.argsort(pred.track_ids, kind="stable")
        if reference is None:
            reference = pred.track_ids[order], pred.fold[order], pred.y_true[order], pred.true_lat[order], pred.true_lon[order]
        assert (pred.track_ids[order] == reference[0]).all() and (pred.fold[order] == reference[1]).all(), \
            f"{name} was not evaluated on the same folds"
        probas[name] = pred.proba[order]
        rows[name] = _scores(pred, classes, args.seed)
        last = Predictions(pred.track_ids[order], pred.fold[order], pred.y_true[order], pred.proba[order],
                           pred.classes, pred.true_lat[order], pred.true_lon[order])
    members = [m for m in ENSEMBLE if m in probas]
    if len(members) > 1:
        name = "ensemble (mean of " + ", ".join(members) + ")"
        mean = np.mean([probas[m] for m in members], axis=0)
        rows[name] = _scores(Predictions(last.track_ids, last.fold, last.y_true, mean, last.classes, last.true_lat,
                                         last.true_lon), classes, args.seed)

    lines = [
        f"UCI Geographical Original of Music, {len(table.frame)} tracks, {len(classes)} classes, "
        f"{args.folds}-fold stratified CV (seed {args.seed}), out-of-fold predictions; "
        f"model settings from `{args.params.name}`; torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"total {time.perf_counter() - t0:.0f} s. Brackets: 95 % bootstrap intervals over tracks.",
        "",
        "| model | top-1 acc (argmax) | top-5 acc | mean error km (argmax) | top-1 acc (distance-aware) | mean error km (distance-aware) | time s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def pct(v):
        return f"{v[0]:.1%} ({v[1]:.1%}–{v[2]:.1%})"

    def km(v):
        return f"{v[0]:,.0f} ({v[1]:,.0f}–{v[2]:,.0f})"

    for name, s in rows.items():
        took = f"{seconds[name]:.0f}" if name in seconds else "–"
        lines.append(f"| {name} | {pct(s['acc_argmax'])} | {s['top5']:.1%} | {km(s['km_argmax'])} | "
                     f"{pct(s['acc_distance'])} | {km(s['km_distance'])} | {took} |")
    lines += ["", "Reference: random forest 48 % / about 2,980 km on this protocol; Zhou et al. 2014 report 3,113 km."]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "uci_cv.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
