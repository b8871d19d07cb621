"""Folk melodies (the Essen collection inside music21): sequence models on per-note frames against models
on global symbolic features, their ensemble fitted on held-out rows, what the source file alone predicts,
and the Chinese provinces in km.

    .venv/bin/python benchmarks/bench_folk.py                          # full run (resumable)
    .venv/bin/python benchmarks/bench_folk.py --levels province        # the Chinese provinces only
    .venv/bin/python benchmarks/bench_folk.py --bagging 5 --models fcnn   # k = 5 bags inside each outer fold
    .venv/bin/python benchmarks/bench_folk.py --quick                  # 3 folds, 2 epochs, a subset of files

Protocol: every model reads the same `make_splits(kfold)` splits (stratified by class, grouped by tune
variant) and is trained by the library, as a run trains it: networks by `train_model`, baselines by
`run_baselines`, with the params files' class weighting for all of them (`train.class_weights`). Networks
early-stop on each fold's validation rows; baselines fit on train + validation. With `--bagging K`
(`train.bagging.folds`) every model is instead a bag of K members per outer fold. Each member writes its
held-out probabilities as it trains (the validation rows, or the out-of-fold rows when bagged); the best
sequence and global-feature models are marked by their held-out score, and the ensemble's temperatures and
weights are fitted on those rows with the run's objective (`geomusic_lib.training.ensemble`). Test rows
choose nothing. Writes one table per level: `out/folk_province.md`, `out/folk_country.md` (and `out/folk_files.md`).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from threadpoolctl import threadpool_limits

from geomusic_lib.training import baseline_proba, fit_baseline, train_model
from geomusic_lib.data import build_class_table, load_folk_tracks, make_splits, Split, TrackTable
from geomusic_lib.evaluation import evaluate_predictions
from geomusic_lib.features import notes_features
from geomusic_lib.core import Params, deep_merge, params_from_dict
from geomusic_lib.predict import Predictions
from geomusic_lib.core.manifest import MADE_AT_STAMP, made_at

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _cv import cached_baseline, ensemble, ensemble_weights, held_out_probas, held_out_rows, km, out_of_fold, pct, \
    protocol  # noqa: E402

QUICK = {"folds": 3, "epochs": 2, "files": ["han1", "han2", "lux", "lot", "dva0", "fink0"], "bootstrap": 200}


def load_level(params: Params) -> tuple[TrackTable, list[np.ndarray], dict]:
    """The labelled tunes (note arrays kept) with their global features as the table's features, and
    their frames."""
    start = time.perf_counter()
    table = load_folk_tracks(params.data.folk)
    load_seconds = time.perf_counter() - start
    feats, frames = notes_features(table.frame, progress=False)
    frame = table.frame.join(feats, on="track_id", how="inner").reset_index(drop=True)
    out = TrackTable(frame, list(feats.columns), "folk", table.notes)
    return out, [frames[t] for t in frame["track_id"]], {"load_seconds": load_seconds, **table.notes["report"]}


def oof(table: TrackTable, splits: list[Split], parts: dict[int, np.ndarray]) -> Predictions:
    """Out-of-fold test predictions in table order."""
    proba = np.zeros((len(table.frame), len(table.classes())))
    fold = np.full(len(table.frame), -1)
    for s in splits:
        proba[s.test], fold[s.test] = parts[s.fold], s.fold
    f = table.frame
    return Predictions(f["track_id"].to_numpy(), fold, table.label_indices(), proba, table.classes(),
                       f["lat"].to_numpy(float), f["lon"].to_numpy(float))


def fit_members(table: TrackTable, frames, splits: list[Split], params: Params, out: Path) -> dict[str, float]:
    """Every baseline and network of `params`, trained (or read back) under `out`; seconds per member."""
    seconds: dict[str, float] = {}
    for name in params.baselines:
        seconds[name] = cached_baseline(name, table, splits, params, out)
        print(f"  {name}: {seconds[name]:.0f} s", flush=True)
    for name in params.models:
        t = time.perf_counter()
        train_model(name, table, splits, params, out / name, frames=frames, progress=False)
        seconds[name] = time.perf_counter() - t
        print(f"  {name}: {seconds[name]:.0f} s", flush=True)
    return seconds


def held_out_score(name: str, table: TrackTable, splits, params: Params, out: Path, metric) -> float:
    """`metric(y, predicted)` of member `name` over every fold's held-out rows together."""
    proba = held_out_probas(name, table, splits, params, out)
    rows = held_out_rows(splits, params)
    y = table.label_indices()
    return float(metric(np.concatenate([y[r] for r in rows]), np.concatenate([proba[s.fold].argmax(1) for s in splits])))


def input_of(name: str, params: Params) -> str:
    """What member `name` reads: global features, note frames (floats, viewpoint tokens or both), n-grams."""
    section = getattr(params.model, name, None)
    if getattr(section, "view", None) == "frames":
        return {"floats": "notes (frames)", "viewpoints": "notes (viewpoint tokens)",
                "both": "notes (frames + viewpoint tokens)"}[section.inputs]
    return {"majority": "—", "ngram": "notes (n-grams)"}.get(name, "global features")


def metric_row(pred: Predictions, classes: pd.DataFrame, args) -> dict[str, object]:
    m = evaluate_predictions(pred, classes, bootstrap=args.bootstrap, seed=args.seed)
    return {k: (m[k], m.get(f"{k}_ci_low", np.nan), m.get(f"{k}_ci_high", np.nan))
            for k in ("balanced_accuracy", "macro_f1", "accuracy", "top5_accuracy", "mean_km", "median_km",
                      "region_accuracy")}


# --------------------------------------------------------------------------- what the source file predicts
def file_alone(table: TrackTable, splits: list[Split], seed: int) -> dict[int, np.ndarray]:
    """Logistic regression on the one-hot source file only (han1, lux, erk10, …), fitted on train +
    validation, on each fold's test rows."""
    x = pd.get_dummies(table.frame["source_file"]).to_numpy(dtype=float)
    y, k = table.label_indices(), len(table.classes())
    fits = {s.fold: np.concatenate([s.train, s.val]) for s in splits}
    return {s.fold: baseline_proba(LogisticRegression(max_iter=3000).fit(x[fits[s.fold]], y[fits[s.fold]]),
                                   x[s.test], k) for s in splits}


#: The model of the file checks: cheap, and weighted as the run weighs every model.
FILE_MODEL = "logreg"


def leave_file_out(table: TrackTable, params: Params, min_tunes: int = 20) -> pd.DataFrame:
    """`FILE_MODEL` trained without one collection file (nor any variant of its tunes), tested on that
    file: a class is scored on a file only if at least `min_tunes` of its tunes lie in other files."""
    f, y, x = table.frame, table.label_indices(), table.features
    rows = []
    for name in f["source_file"].value_counts().loc[lambda c: c >= min_tunes].index:
        test = np.flatnonzero(f["source_file"] == name)
        train = np.flatnonzero((f["source_file"] != name) & ~f["group"].isin(set(f["group"].iloc[test])))
        counts = np.bincount(y[train], minlength=len(table.classes()))
        test = test[counts[y[test]] >= min_tunes]
        if len(test) == 0:
            continue
        fitted = fit_baseline(FILE_MODEL, params.seed, x[train], y[train], params.baseline_settings_for(FILE_MODEL))
        proba = baseline_proba(fitted, x[test], len(table.classes()))
        rows.append(pd.DataFrame({"row": test, "file": name, "pred": proba.argmax(1)}))
        print(f"  without {name}: {len(test)} tunes scored", flush=True)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["row", "file", "pred"])


def file_report(table: TrackTable, splits, params: Params, args, out: Path) -> list[str]:
    """What the source file alone predicts, and `FILE_MODEL` on collections held out of training."""
    classes = build_class_table(table.frame)
    y = table.label_indices()
    alone = metric_row(oof(table, splits, file_alone(table, splits, args.seed)), classes, args)
    files_per_class = table.frame.groupby("label")["source_file"].agg(lambda s: (s.value_counts() >= 20).sum())
    lines = ["", f"### What the collection file alone predicts ({len(table.frame)} tunes, {len(classes)} classes)", "",
             f"Logistic regression on the one-hot source file only (same folds): balanced accuracy "
             f"{pct(alone['balanced_accuracy'])}, accuracy {pct(alone['accuracy'])}. Files with at least 20 tunes "
             "per class: " + ", ".join(f"{c} {n}" for c, n in files_per_class.items()) + ".", ""]
    lfo = leave_file_out(table, params)
    if lfo.empty:
        return lines + ["Every class comes from a single collection file here: country and file cannot be told apart."]
    cached_baseline(FILE_MODEL, table, splits, params, out)
    cv = out_of_fold([FILE_MODEL], out)[FILE_MODEL]
    cv_pred = pd.Series(cv.proba.argmax(1), index=cv.track_ids).loc[table.frame["track_id"]].to_numpy()
    lines += [f"{FILE_MODEL} on the global features, on the tunes of each collection file, trained without that file "
              f"(leave-one-file-out) vs the {len(splits)}-fold variant-grouped CV, same tunes:", "",
              "| class | tunes | files | recall, grouped CV | recall, file held out |", "|---|---:|---:|---:|---:|"]
    for c, part in lfo.groupby(y[lfo["row"]]):
        rows = part["row"].to_numpy()
        lines.append(f"| {table.classes()[c]} | {len(rows)} | {part['file'].nunique()} | "
                     f"{np.mean(cv_pred[rows] == c):.1%} | {np.mean(part['pred'] == c):.1%} |")
    rows = lfo["row"].to_numpy()
    lines += ["", f"Balanced accuracy on these {len(rows)} tunes: grouped CV "
              f"{balanced_accuracy_score(y[rows], cv_pred[rows]):.1%}, file held out "
              f"{balanced_accuracy_score(y[rows], lfo['pred']):.1%}."]
    return lines


def files_level(params: Params, args, out: Path) -> list[str]:
    """Only the file checks (cheap): `--levels files`, with `--files` for a subset of the corpus."""
    table, _, _ = load_level(params)
    params = params.for_tracks(len(table.frame))
    return file_report(table, make_splits(table.frame, params.split, params.seed), params, args, out)


# --------------------------------------------------------------------------- levels
#: Per level: the held-out metric that marks the best models, and the table's columns (metric, title).
LEVELS = {
    "country": (balanced_accuracy_score, [("balanced_accuracy", "balanced accuracy"), ("macro_f1", "macro-F1"),
                                          ("accuracy", "accuracy")]),
    "province": (accuracy_score, [("accuracy", "top-1"), ("top5_accuracy", "top-5"),
                                  ("balanced_accuracy", "balanced accuracy"), ("region_accuracy", "region accuracy"),
                                  ("mean_km", "mean km"), ("median_km", "median km")]),
}


def _cell(value, column: str) -> str:
    if column == "median_km":
        return f"{value[0]:,.0f}"
    return km(value) if column.endswith("_km") else pct(value)


def level_table(level: str, params: Params, args, out: Path) -> tuple[list[str], TrackTable, list[Split]]:
    """Every member of `params` and their ensemble on one level, as a Markdown table."""
    table, frames, info = load_level(params)
    params = params.for_tracks(len(table.frame))  # train.bagging.folds: auto made a number
    splits = make_splits(table.frame, params.split, params.seed)
    classes = build_class_table(table.frame, "china_province" if level == "province" else "country")
    print(f"{level} level: {len(table.frame)} tunes, {len(classes)} classes, {info['groups']} groups "
          f"(largest {info['largest_group']}), {len(table.feature_names)} global features, frames "
          f"{frames[0].shape[1]} channels; cached load {info['load_seconds']:.1f} s", flush=True)
    seconds = fit_members(table, frames, splits, params, out)
    metric, columns = LEVELS[level]
    names = [*params.baselines, *params.models]
    held = {m: held_out_score(m, table, splits, params, out, metric) for m in names}
    best = {kind: max((m for m in names if input_of(m, params) == kind), key=held.get, default=None)
            for kind in {input_of(m, params) for m in names} - {"—"}}
    preds = out_of_fold(names, out)
    candidates = [m for m in names if m != "majority"]
    t = time.perf_counter()
    preds["ensemble"], fitted = ensemble(candidates, table, splits, params, out, preds)
    seconds["ensemble"] = time.perf_counter() - t
    lines = [f"## {level.capitalize()} level: {len(table.frame)} tunes, {len(classes)} classes, {params.split.folds}-fold "
             f"CV grouped by variant ({info['groups']} groups, largest {info['largest_group']}), seed {params.seed}", "",
             protocol(params), "",
             "| model | input | held-out " + columns[0][1] + " | " + " | ".join(t for _, t in columns) + " | time s |",
             "|---|---|" + "---:|" * (len(columns) + 2)]
    for name, pred in preds.items():
        r = metric_row(pred, classes, args)
        mark = " **(best on held-out rows)**" if name in best.values() else ""
        kind, chosen_by = (input_of(name, params), f"{held[name]:.1%}") if name in held else ("ensemble", "–")
        cells = " | ".join(_cell(r[c], c) for c, _ in columns)
        lines.append(f"| {name}{mark} | {kind} | {chosen_by} | {cells} | {seconds.get(name, 0):.0f} |")
    lines += ["", ensemble_weights(fitted, candidates)]
    return lines, table, splits


def country_level(params: Params, args, out: Path) -> list[str]:
    lines, table, splits = level_table("country", params, args, out)
    return lines + file_report(table, splits, params, args, out)


def province_level(params: Params, args, out: Path) -> list[str]:
    return level_table("province", params, args, out)[0]


def level_params(path: Path, args, files: list[str] | None) -> Params:
    """The level's params file with the benchmark's folds, seed, CPU and (when given) members, epochs and
    bagging on top."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    over = {"seed": args.seed, "device": "cpu", "split": {"strategy": "kfold", "folds": args.folds},
            "train": {"threads": args.threads}}
    if args.epochs:
        over["train"]["epochs"] = args.epochs
    if args.bagging:
        over["train"]["bagging"] = {"folds": args.bagging}
    if files is not None:
        over["data"] = {"folk": {"files": files}}
    if args.overlay:
        raw = deep_merge(raw, yaml.safe_load(args.overlay.read_text(encoding="utf-8")) or {})
    merged = deep_merge(raw, over)
    for key in ("models", "baselines"):
        if getattr(args, key) is not None:
            merged[key] = getattr(args, key)
    return params_from_dict(merged, source=str(path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"fast sanity run: {QUICK}")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs of params/folk.yaml")
    ap.add_argument("--models", nargs="*", default=None, help="networks (default: each params file's `models`)")
    ap.add_argument("--baselines", nargs="*", default=None, help="baselines (default: each params file's `baselines`)")
    ap.add_argument("--bagging", type=int, default=None, help="override train.bagging.folds (k members per outer fold)")
    ap.add_argument("--overlay", type=Path, default=None,
                    help="a params file merged on top of both levels' params, to benchmark other settings")
    ap.add_argument("--levels", nargs="*", default=["province", "country"], choices=["country", "province", "files"],
                    help="files: only the collection-file checks of the country level")
    ap.add_argument("--files", nargs="*", default=None, help="Essen file stems for the country level (default: all)")
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads, joblib workers")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()
    files = args.files
    if args.quick:
        args.folds, args.epochs, args.bootstrap, files = QUICK["folds"], QUICK["epochs"], QUICK["bootstrap"], QUICK["files"]
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(args.threads)
    os.environ["LOKY_MAX_CPU_COUNT"] = str(args.threads)
    threadpool_limits(args.threads)
    tag = (("folk_quick" if args.quick else "folk") + (f"_bag{args.bagging}" if args.bagging else "")
           + (f"_{args.overlay.stem}" if args.overlay else ""))
    stamp = MADE_AT_STAMP.format(made_at(HERE.parent))  # the code that runs, not a later one
    head = [f"Essen Folksong Collection via music21; torch {torch.__version__}, {args.threads} CPU thread(s), "
            f"load {os.getloadavg()[0]:.1f} at the start. "
            f"Brackets: 95 % bootstrap intervals over tunes ({args.bootstrap} resamples).", ""]
    levels = {"province": (province_level, "folk_china.yaml", ["han1"] if args.quick else None),
              "country": (country_level, "folk.yaml", files), "files": (files_level, "folk.yaml", files)}
    args.out.mkdir(parents=True, exist_ok=True)
    for level in [lv for lv in levels if lv in args.levels]:  # province first: the fair test of melody reading
        fit_level, params_file, level_files = levels[level]
        t0 = time.perf_counter()
        body = fit_level(level_params(HERE.parent / "params" / params_file, args, level_files), args,
                         args.out / f"{tag}_run" / ("province" if level == "province" else "country"))
        text = "\n".join([*head, *body, "", f"Total {time.perf_counter() - t0:.0f} s."])
        print(text, flush=True)
        (args.out / f"{tag}_{level}.md").write_text(stamp + "\n" + text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
