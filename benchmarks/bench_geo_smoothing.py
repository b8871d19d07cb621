"""Haversine soft targets (`train.geo_smoothing_km`), measured on validation rows only: for each τ,
a network is trained on the first folds of the 10-fold UCI protocol (or of the 5-fold
spotify_country protocol) and scored on each fold's validation rows: top-1 accuracy and mean
great-circle error (arg-max and distance-aware decisions). Test rows are never read.

    .venv/bin/python benchmarks/bench_geo_smoothing.py --model fcnn --taus none 500 1000 2000 --folds 3
    .venv/bin/python benchmarks/bench_geo_smoothing.py --dataset spotify_country --model tabm
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from geomusic_lib.data import build_class_table, great_circle_km, load_table, load_uci, make_splits
from geomusic_lib.predict import distance_aware_predict, Predictor
from geomusic_lib.core import load_params
from geomusic_lib.training import train_model

HERE = Path(__file__).resolve().parent


def _table(dataset: str):
    if dataset == "uci":
        return load_uci(), 10
    from bench_spotify_country import AUDIO, SOURCE, prepared_table

    csv = prepared_table(SOURCE, HERE / "out" / "spotify_country_table.csv")
    return load_table(csv, "country", AUDIO, "artist_group", id_column="row_id"), 5


def _validation_scores(name: str, table, splits, params) -> dict[str, float]:
    """Mean over folds of validation top-1 and mean km (arg-max and distance-aware)."""
    classes = build_class_table(table.frame).set_index("class").loc[table.classes()]
    lat, lon = classes["lat"].to_numpy(float), classes["lon"].to_numpy(float)
    y = table.label_indices()
    out = {"acc": [], "km": [], "acc_dist": [], "km_dist": []}
    with tempfile.TemporaryDirectory() as tmp:
        result = train_model(name, table, splits, params, tmp, progress=False)
        for split, fold in zip(splits, result.folds):
            proba = Predictor.from_checkpoint(fold.checkpoint, device="cpu").predict_proba(
                table.frame.iloc[split.val][table.feature_names])
            true_lat, true_lon = table.frame["lat"].to_numpy()[split.val], table.frame["lon"].to_numpy()[split.val]
            true_lat = np.where(np.isfinite(true_lat), true_lat, lat[y[split.val]])
            true_lon = np.where(np.isfinite(true_lon), true_lon, lon[y[split.val]])
            for key, pred in (("", proba.argmax(1)), ("_dist", distance_aware_predict(proba, lat, lon))):
                out[f"acc{key}"].append(float((pred == y[split.val]).mean()))
                out[f"km{key}"].append(float(np.mean(great_circle_km(lat[pred], lon[pred], true_lat, true_lon))))
    return {k: float(np.mean(v)) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["uci", "spotify_country"], default="uci")
    ap.add_argument("--model", default="fcnn")
    ap.add_argument("--taus", nargs="+", default=["none", "500", "1000", "2000"], help="km; none = hard labels")
    ap.add_argument("--folds", type=int, default=3, help="the first N folds of the protocol")
    ap.add_argument("--params", default=str(HERE.parent / "params" / "default.yaml"))
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    table, n_folds = _table(args.dataset)
    print(f"{args.dataset}, {args.model}, validation rows of the first {args.folds} of {n_folds} folds "
          f"(torch {torch.__version__})\n")
    print("| τ km | val top-1 | val mean km | val top-1 (distance-aware) | val mean km (distance-aware) | s |")
    print("|---|---:|---:|---:|---:|---:|")
    for tau in args.taus:
        km = None if tau == "none" else float(tau)
        params = load_params(args.params, {"device": "cpu", "split": {"strategy": "kfold", "folds": n_folds},
                                           "train": {"geo_smoothing_km": km}})
        splits = make_splits(table.frame, params.split, params.seed)[:args.folds]
        t0 = time.perf_counter()
        s = _validation_scores(args.model, table, splits, params)
        print(f"| {tau} | {s['acc']:.1%} | {s['km']:,.0f} | {s['acc_dist']:.1%} | {s['km_dist']:,.0f} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
