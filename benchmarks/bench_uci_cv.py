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

from geomusic_lib.baselines import run_baselines
from geomusic_lib.data import load_uci, make_splits
from geomusic_lib.decision import _great_circle_km, distance_aware_predict
from geomusic_lib.params import params_from_dict
from geomusic_lib.results import read_predictions
from geomusic_lib.train import class_coordinates, train_model

HERE = Path(__file__).resolve().parent
MODELS = ["fcnn", "cnn", "attention", "rnn"]
BASELINES = ["majority", "logreg", "random_forest", "hist_gb"]
#: Fixed before looking at test folds: the four networks plus logistic regression.
ENSEMBLE = ["fcnn", "cnn", "rnn", "attention", "logreg"]


def _scores(proba: np.ndarray, y_true: np.ndarray, true_lat: np.ndarray, true_lon: np.ndarray,
            class_lat: np.ndarray, class_lon: np.ndarray) -> dict[str, float]:
    out = {}
    for decision, y_pred in (("argmax", proba.argmax(1)), ("distance", distance_aware_predict(proba, class_lat, class_lon))):
        out[f"acc_{decision}"] = float((y_pred == y_true).mean())
        out[f"km_{decision}"] = float(_great_circle_km(class_lat[y_pred], class_lon[y_pred], true_lat, true_lon).mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids oversubscription on a shared CPU)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--baselines", nargs="*", default=BASELINES)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(args.threads)

    table = load_uci()
    params = params_from_dict({
        "seed": args.seed, "device": "cpu", "split": {"strategy": "kfold", "folds": args.folds},
        "train": {"epochs": args.epochs, "patience": 10, "scheduler": "cosine", "monitor": "val_loss"},
    })
    splits = make_splits(table.frame, params.split, params.seed)
    run_dir = args.out / "uci_cv_run" / "models"
    classes = table.classes()
    lat, lon, _ = class_coordinates(table, classes)
    class_lat, class_lon = np.asarray(lat), np.asarray(lon)

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
        rows[name] = _scores(probas[name], *reference[2:], class_lat, class_lon)
    members = [m for m in ENSEMBLE if m in probas]
    if len(members) > 1:
        name = "ensemble (" + " + ".join(members) + ")"
        rows[name] = _scores(np.mean([probas[m] for m in members], axis=0), *reference[2:], class_lat, class_lon)

    lines = [
        f"UCI Geographical Original of Music, {len(table.frame)} tracks, {len(classes)} classes, "
        f"{args.folds}-fold stratified CV (seed {args.seed}), out-of-fold predictions; "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, total {time.perf_counter() - t0:.0f} s.",
        "",
        "| model | top-1 acc (argmax) | mean error km (argmax) | top-1 acc (distance-aware) | mean error km (distance-aware) | time s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in rows.items():
        lines.append(f"| {name} | {s['acc_argmax']:.1%} | {s['km_argmax']:,.0f} | {s['acc_distance']:.1%} | "
                     f"{s['km_distance']:,.0f} | {seconds.get(name, float('nan')):.0f} |")
    lines += ["", "Reference: random forest 48 % / about 2,980 km on this protocol; Zhou et al. 2014 report 3,113 km."]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "uci_cv.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
