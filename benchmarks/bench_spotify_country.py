"""The second benchmark dataset: Spotify audio features of 40 countries' Top-50 playlists
(`../shared/data/spotify_country/`, README there), artist-grouped stratified 5-fold CV.

    .venv/bin/python benchmarks/bench_spotify_country.py                   # networks, baselines, ensemble
    .venv/bin/python benchmarks/bench_spotify_country.py --models fcnn tabm --baselines random_forest

Protocol: the rows of the 40 country playlists (the global playlist has no country and is
dropped; 2,000 rows, 1,148 distinct tracks; a track charting in several countries appears once per
country). The group of a row is its first artist, so no artist is on both sides of a fold. Every
fold carves its validation rows from its training part (artist-grouped too); networks early-stop
on them, the ensemble's weights and temperatures are fitted on them, and nothing is chosen on a
test fold. Baselines fit on train + validation, as in the book. Prints top-1 accuracy and mean
great-circle error with 95 % bootstrap intervals over the 2,000 out-of-fold rows, and writes the
table to `benchmarks/out/spotify_country.md`. Runs resume like `bench_uci_cv.py` (the run folder
keeps checkpoints). The feature values are Spotify content: the terms forbid shipping a model
trained on them; this script only measures.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from threadpoolctl import threadpool_limits

from geomusic_lib.pipeline import stages
from geomusic_lib.data import load_run_data
from geomusic_lib.evaluation import evaluate_predictions
from geomusic_lib.core import deep_merge, params_from_dict, RunDir
from geomusic_lib.predict import read_predictions
from geomusic_lib.training import train_model
from geomusic_lib.core.manifest import MADE_AT_STAMP, made_at
from geomusic_lib.book.findings import split_protocol
from _cv import protocol

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "shared" / "data" / "spotify_country" / "top50_41countries_2025-02-12.csv"
AUDIO = ["danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness", "instrumentalness",
         "liveness", "valence", "tempo", "time_signature", "duration_ms"]
MODELS = ["fcnn", "tabm", "cnn", "rnn", "attention"]
BASELINES = ["logreg", "random_forest", "hist_gb", "knn"]


def prepared_table(source: Path, out: Path) -> Path:
    """The source rows with a country, the first artist as `artist_group`, written as a CSV for the table source."""
    raw = pd.read_csv(source, keep_default_na=False, na_values=[""])
    rows = raw[raw["country"].notna()].copy()
    rows["artist_group"] = rows["artists"].str.split(",").str[0].str.strip()
    rows["row_id"] = [f"{c}_{r:02d}" for c, r in zip(rows["country"], rows["daily_rank"])]
    out.parent.mkdir(parents=True, exist_ok=True)
    rows[["row_id", "country", "artist_group", "name", *AUDIO]].to_csv(out, index=False)
    return out


def _params(args: argparse.Namespace, table_csv: Path):
    raw = yaml.safe_load(args.params.read_text(encoding="utf-8"))
    if args.overlay:
        raw = deep_merge(raw, yaml.safe_load(args.overlay.read_text(encoding="utf-8")) or {})
    data = {"source": "table", "table": {"path": str(table_csv), "label_column": "country", "id_column": "row_id",
                                         "group_column": "artist_group", "feature_columns": AUDIO}}
    overrides = {"run_name": args.run_name, "runs_dir": str(args.out), "seed": args.seed, "device": "cpu",
                 "data": data, "split": {"strategy": "kfold", "folds": args.folds, "train": 0.7, "val": 0.1,
                                         "test": 0.2},
                 "models": args.models, "baselines": args.baselines, "evaluate": {"bootstrap": args.bootstrap},
                 "train": {"threads": args.threads}}
    return params_from_dict(deep_merge(raw, overrides), source=str(args.params))


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=SOURCE)
    ap.add_argument("--params", type=Path, default=HERE.parent / "params" / "default.yaml")
    ap.add_argument("--overlay", type=Path, default=None, help="a params file merged on top of --params")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--baselines", nargs="*", default=BASELINES)
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS/OpenMP threads, joblib workers")
    ap.add_argument("--run-name", default="spotify_country_run")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    return ap.parse_args()


def _fit_all(params, run: RunDir) -> dict[str, float]:
    """Prepare the run's data, train the networks, fit the baselines and the ensemble; seconds per member."""
    stages.prepare_data(params, run)
    data = load_run_data(run)
    seconds = {}
    for name in params.models:
        t0 = time.perf_counter()
        train_model(name, data.table, data.splits, params, run.model_dir(name), progress=False,
                    class_info=data.classes)
        seconds[name] = time.perf_counter() - t0
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
    for name in params.baselines:
        t0 = time.perf_counter()
        stages.fit_baselines(params, run, data, names=[name])
        seconds[name] = time.perf_counter() - t0
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
    t0 = time.perf_counter()
    stages.run_ensemble(run, data, params)
    seconds[stages.ENSEMBLE_NAME] = time.perf_counter() - t0
    return seconds


def _table(params, run: RunDir, seconds: dict[str, float], args) -> pd.DataFrame:
    classes = run.read_classes()
    rows = []
    for name in [*params.models, *params.baselines, stages.ENSEMBLE_NAME]:
        m = evaluate_predictions(read_predictions(run.predictions(name)), classes, bootstrap=args.bootstrap,
                                 seed=args.seed)
        rows.append({"model": name, "top-1": m["accuracy"], "top-1 low": m["accuracy_ci_low"],
                     "top-1 high": m["accuracy_ci_high"], "top-5": m["top5_accuracy"], "mean km": m["mean_km"],
                     "mean km low": m["mean_km_ci_low"], "mean km high": m["mean_km_ci_high"],
                     "seconds": seconds.get(name, np.nan)})
    return pd.DataFrame(rows)


def _markdown(table: pd.DataFrame, params, run: RunDir, args) -> str:
    data = load_run_data(run)
    bagged = params.for_tracks(len(data.table.frame)).train.bagging.folds > 1
    head = (f"spotify_country (`{args.source.name}`): {len(data.table.frame)} rows, {len(data.table.classes())} "
            f"countries, {args.folds}-fold stratified CV grouped by first artist (seed {args.seed}); settings from "
            f"`{args.params.name}`" + (f" + `{args.overlay.name}`" if args.overlay else "") +
            f"; torch {torch.__version__}. Brackets: 95 % bootstrap intervals over rows ({args.bootstrap} resamples). "
            + split_protocol(data.table.notes) + " " + protocol(params.for_tracks(len(data.table.frame)))
            + f" Bag size from train.bagging.folds: {params.train.bagging.folds}"
            + ("; the ensemble is fitted on the out-of-fold rows." if bagged else "."))
    lines = [head, "", "| model | top-1 | top-5 | mean km | time s |", "|---|---:|---:|---:|---:|"]
    for r in table.itertuples(index=False):
        lines.append(f"| {r.model} | {r[1]:.1%} ({r[2]:.1%}–{r[3]:.1%}) | {r[4]:.1%} | {r[5]:,.0f} ({r[6]:,.0f}–"
                     f"{r[7]:,.0f}) | {r[8]:.0f} |")
    return "\n".join(lines)


def main() -> None:
    args = _parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    threadpool_limits(args.threads)
    torch.set_num_threads(args.threads)
    os.environ["LOKY_MAX_CPU_COUNT"] = str(args.threads)  # random_forest's n_jobs=-1 → this many workers
    table_csv = prepared_table(args.source, args.out / "spotify_country_table.csv")
    params = _params(args, table_csv)
    run = RunDir(params.run_dir)
    seconds = _fit_all(params, run)
    text = _markdown(_table(params, run, seconds, args), params, run, args)
    print(text)
    (args.out / f"{args.run_name.removesuffix('_run')}.md").write_text(
        MADE_AT_STAMP.format(made_at(Path(__file__).resolve().parents[1])) + "\n" + text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
