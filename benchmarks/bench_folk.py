"""Folk melodies (the Essen collection inside music21): sequence models on per-note frames against models
on global symbolic features, their validation-fitted ensemble, what the source file alone predicts, and
the Chinese provinces in km.

    .venv/bin/python benchmarks/bench_folk.py            # full run (about 1.5 h on one busy core; resumable)
    .venv/bin/python benchmarks/bench_folk.py --quick    # 3 folds, 2 epochs, a subset of files (minutes)

Protocol: every model reads the same `make_splits(kfold)` splits (stratified by class, grouped by
tune variant). Networks early-stop on each fold's validation rows; sklearn baselines fit on train +
validation for the test rows, and on the training rows alone for their validation probabilities.
The best sequence model and the best global-feature model are chosen by mean validation balanced
accuracy; the ensemble's member temperatures and weights are fitted on validation rows
(`geomusic_lib.training.ensemble.fit_ensemble`). Test rows choose nothing. Writes `out/folk.md`.
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
from sklearn.metrics import balanced_accuracy_score
from threadpoolctl import threadpool_limits

from geomusic_lib.training import baseline_proba, fit_baseline, fit_ensemble, make_baseline, train_model
from geomusic_lib.data import build_class_table, load_folk_tracks, make_splits, Split, TrackTable
from geomusic_lib.evaluation import evaluate_predictions
from geomusic_lib.features import notes_features
from geomusic_lib.core import Params, deep_merge, params_from_dict
from geomusic_lib.predict import Predictions, Predictor
from geomusic_lib.core.manifest import MADE_AT_STAMP, made_at

HERE = Path(__file__).resolve().parent
SEQUENCE = ["cnn", "rnn", "attention"]
GLOBAL_NETS = ["fcnn"]
GLOBAL_SKLEARN = ["logreg", "logreg_balanced", "random_forest", "random_forest_balanced"]
QUICK = {"folds": 3, "epochs": 2, "files": ["han1", "han2", "lux", "lot", "dva0", "fink0"], "bootstrap": 200}


def load_level(params: Params) -> tuple[TrackTable, list[np.ndarray], dict]:
    """The labelled tunes with their global features as the table's features, and their frames."""
    start = time.perf_counter()
    table = load_folk_tracks(params.data.folk)
    load_seconds = time.perf_counter() - start
    feats, frames = notes_features(table.frame, progress=False)
    frame = table.frame.drop(columns=[c for c in table.frame if c.startswith("notes_")])
    frame = frame.join(feats, on="track_id", how="inner").reset_index(drop=True)
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


#: The library's baselines with balanced class weights (bench only): balanced accuracy is the target
#: here, and the networks train with class weights (train.class_weights: true).
BALANCED = {"logreg_balanced": ("logreg", {"logisticregression__class_weight": "balanced"}),
            "random_forest_balanced": ("random_forest", {"class_weight": "balanced_subsample"})}


def fit_sklearn(name: str, seed: int, x: np.ndarray, y: np.ndarray):
    if name not in BALANCED:
        return fit_baseline(name, seed, x, y)
    base, settings = BALANCED[name]
    return make_baseline(base, seed).set_params(**settings).fit(x, y)


def sklearn_member(name: str, table: TrackTable, splits: list[Split], seed: int, x: np.ndarray | None = None
                   ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Test probabilities (fit on train + val) and validation probabilities (fit on train) per fold."""
    x = table.features if x is None else x
    y, k = table.label_indices(), len(table.classes())
    test, val = {}, {}
    for s in splits:
        fit = np.concatenate([s.train, s.val])
        test[s.fold] = baseline_proba(fit_sklearn(name, seed + s.fold, x[fit], y[fit]), x[s.test], k)
        val[s.fold] = baseline_proba(fit_sklearn(name, seed + s.fold, x[s.train], y[s.train]), x[s.val], k)
    return test, val


def network_member(name: str, table: TrackTable, splits: list[Split], params: Params, frames, out: Path
                   ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Train (or resume) network `name`; its test and validation probabilities per fold."""
    use_frames = frames if name in SEQUENCE else None
    train_model(name, table, splits, params, out / name, frames=use_frames, progress=False)
    test, val = {}, {}
    for s in splits:
        predictor = Predictor.from_checkpoint(out / name / f"fold_{s.fold}" / "checkpoint_best.pt", device="cpu")
        data = (lambda rows: [frames[i] for i in rows]) if use_frames else (lambda rows: table.frame.iloc[rows])
        test[s.fold], val[s.fold] = predictor.predict_proba(data(s.test)), predictor.predict_proba(data(s.val))
    return test, val


def val_balanced(table: TrackTable, splits: list[Split], val: dict[int, np.ndarray]) -> float:
    y = table.label_indices()
    return float(np.mean([balanced_accuracy_score(y[s.val], val[s.fold].argmax(1)) for s in splits]))


def run_members(names: list[str], table, splits, params, frames, out: Path, seconds: dict) -> dict:
    members = {}
    for name in names:
        t = time.perf_counter()
        if name in SEQUENCE or name in GLOBAL_NETS:
            members[name] = network_member(name, table, splits, params, frames, out)
        else:
            members[name] = sklearn_member(name, table, splits, params.seed)
        seconds[name] = time.perf_counter() - t
        print(f"  {name}: {seconds[name]:.0f} s, validation balanced accuracy "
              f"{val_balanced(table, splits, members[name][1]):.3f}", flush=True)
    return members


def ensemble_member(members: dict, names: list[str], table: TrackTable, splits: list[Split]) -> dict[int, np.ndarray]:
    y = table.label_indices()
    test = {}
    for s in splits:
        ens = fit_ensemble({m: members[m][1][s.fold] for m in names}, y[s.val])
        test[s.fold] = ens.predict({m: members[m][0][s.fold] for m in names})
        print(f"  fold {s.fold} ensemble: {ens.describe()}", flush=True)
    return test


def metric_row(pred: Predictions, classes: pd.DataFrame, args) -> dict[str, object]:
    m = evaluate_predictions(pred, classes, bootstrap=args.bootstrap, seed=args.seed)
    return {k: (m[k], m.get(f"{k}_ci_low", np.nan), m.get(f"{k}_ci_high", np.nan))
            for k in ("balanced_accuracy", "macro_f1", "accuracy", "top5_accuracy", "mean_km", "median_km")}


def pct(v) -> str:
    return f"{v[0]:.1%} ({v[1]:.1%}–{v[2]:.1%})"


def km(v) -> str:
    return f"{v[0]:,.0f} ({v[1]:,.0f}–{v[2]:,.0f})"


# --------------------------------------------------------------------------- what the source file predicts
def file_alone(table: TrackTable, splits: list[Split], seed: int) -> dict[int, np.ndarray]:
    """Logistic regression on the one-hot source file only (han1, lux, erk10, …)."""
    x = pd.get_dummies(table.frame["source_file"]).to_numpy(dtype=float)
    return sklearn_member("logreg", table, splits, seed, x=x)[0]


def leave_file_out(table: TrackTable, seed: int, model: str, min_tunes: int = 20) -> pd.DataFrame:
    """`model` trained without one collection file (nor any variant of its tunes), tested on that
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
        proba = baseline_proba(fit_sklearn(model, seed, x[train], y[train]), x[test], len(table.classes()))
        rows.append(pd.DataFrame({"row": test, "file": name, "pred": proba.argmax(1)}))
        print(f"  without {name}: {len(test)} tunes scored", flush=True)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["row", "file", "pred"])


#: The model of the file checks: cheap, and the best sklearn model on validation balanced accuracy.
FILE_MODEL = "logreg_balanced"


def file_report(table: TrackTable, splits, args) -> list[str]:
    """What the source file alone predicts, and `FILE_MODEL` on collections held out of training."""
    classes = build_class_table(table.frame)
    y = table.label_indices()
    alone = metric_row(oof(table, splits, file_alone(table, splits, args.seed)), classes, args)
    files_per_class = table.frame.groupby("label")["source_file"].agg(lambda s: (s.value_counts() >= 20).sum())
    lines = ["", f"### What the collection file alone predicts ({len(table.frame)} tunes, {len(classes)} classes)", "",
             f"Logistic regression on the one-hot source file only (same folds): balanced accuracy "
             f"{pct(alone['balanced_accuracy'])}, accuracy {pct(alone['accuracy'])}. Files with at least 20 tunes "
             "per class: " + ", ".join(f"{c} {n}" for c, n in files_per_class.items()) + ".", ""]
    lfo = leave_file_out(table, args.seed, FILE_MODEL)
    if lfo.empty:
        return lines + ["Every class comes from a single collection file here: country and file cannot be told apart."]
    cv = oof(table, splits, sklearn_member(FILE_MODEL, table, splits, args.seed)[0]).proba.argmax(1)
    lines += [f"{FILE_MODEL} on the global features, on the tunes of each collection file, trained without that file "
              f"(leave-one-file-out) vs the {len(splits)}-fold variant-grouped CV, same tunes:", "",
              "| class | tunes | files | recall, grouped CV | recall, file held out |", "|---|---:|---:|---:|---:|"]
    for c, part in lfo.groupby(y[lfo["row"]]):
        rows = part["row"].to_numpy()
        lines.append(f"| {table.classes()[c]} | {len(rows)} | {part['file'].nunique()} | "
                     f"{np.mean(cv[rows] == c):.1%} | {np.mean(part['pred'] == c):.1%} |")
    rows = lfo["row"].to_numpy()
    lines += ["", f"Balanced accuracy on these {len(rows)} tunes: grouped CV "
              f"{balanced_accuracy_score(y[rows], cv[rows]):.1%}, file held out "
              f"{balanced_accuracy_score(y[rows], lfo['pred']):.1%}."]
    return lines


def files_level(params: Params, args) -> list[str]:
    """Only the file checks (cheap): `--levels files`, with `--files` for a subset of the corpus."""
    table, _, _ = load_level(params)
    return file_report(table, make_splits(table.frame, params.split, params.seed), args)


# --------------------------------------------------------------------------- levels
def country_level(params: Params, args, out: Path) -> list[str]:
    table, frames, info = load_level(params)
    splits = make_splits(table.frame, params.split, params.seed)
    classes = build_class_table(table.frame)
    print(f"country level: {len(table.frame)} tunes, {len(classes)} classes, {info['groups']} groups "
          f"(largest {info['largest_group']}), {len(table.feature_names)} global features, frames "
          f"{frames[0].shape[1]} channels; cached load {info['load_seconds']:.1f} s", flush=True)
    seconds: dict[str, float] = {}
    members = run_members([*GLOBAL_SKLEARN, *GLOBAL_NETS, *args.sequence], table, splits, params, frames, out, seconds)
    val = {m: val_balanced(table, splits, members[m][1]) for m in members}
    best_seq = max(args.sequence, key=val.get)
    best_glob = max([*GLOBAL_SKLEARN, *GLOBAL_NETS], key=val.get)
    print(f"chosen on validation rows: sequence {best_seq}, global {best_glob}", flush=True)
    t = time.perf_counter()
    ens = ensemble_member(members, [best_seq, best_glob], table, splits)
    seconds["ensemble"] = time.perf_counter() - t
    preds = {m: oof(table, splits, members[m][0]) for m in members}
    preds["ensemble"] = oof(table, splits, ens)
    preds["majority"] = oof(table, splits, sklearn_member("majority", table, splits, params.seed)[0])
    lines = [f"## Country level: {len(table.frame)} tunes, {len(classes)} countries, {params.split.folds}-fold "
             f"CV grouped by variant ({info['groups']} groups, largest {info['largest_group']}), seed {params.seed}", "",
             "| model | input | val. balanced acc. | balanced accuracy | macro-F1 | accuracy | time s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, pred in preds.items():
        r = metric_row(pred, classes, args)
        kind = ("notes (frames)" if name in SEQUENCE else "ensemble" if name == "ensemble"
                else "—" if name == "majority" else "global features")
        mark = " **(chosen)**" if name in (best_seq, best_glob) else ""
        chosen_by = f"{val[name]:.1%}" if name in val else "–"
        lines.append(f"| {name}{mark} | {kind} | {chosen_by} | {pct(r['balanced_accuracy'])} | "
                     f"{pct(r['macro_f1'])} | {pct(r['accuracy'])} | {seconds.get(name, 0):.0f} |")
    lines += [f"", f"Ensemble: {best_seq} + {best_glob}, member temperatures and weights fitted per fold on its "
              "validation rows."]
    return lines + file_report(table, splits, args)


def province_level(params: Params, args, out: Path) -> list[str]:
    table, frames, info = load_level(params)
    splits = make_splits(table.frame, params.split, params.seed)
    classes = build_class_table(table.frame)
    print(f"province level: {len(table.frame)} tunes, {len(classes)} provinces", flush=True)
    seconds: dict[str, float] = {}
    members = run_members(["majority", "logreg", "random_forest", "random_forest_balanced", *GLOBAL_NETS,
                           *args.sequence], table, splits, params,
                          frames, out, seconds)
    lines = [f"## Province level: {len(table.frame)} Chinese tunes, {len(classes)} provinces (capital coordinates), "
             f"{params.split.folds}-fold CV grouped by variant ({info['groups']} groups)", "",
             "| model | top-1 | top-5 | balanced accuracy | mean km | median km | time s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in members:
        r = metric_row(oof(table, splits, members[name][0]), classes, args)
        lines.append(f"| {name} | {pct(r['accuracy'])} | {pct(r['top5_accuracy'])} | {pct(r['balanced_accuracy'])} "
                     f"| {km(r['mean_km'])} | {r['median_km'][0]:,.0f} | {seconds[name]:.0f} |")
    return lines


def level_params(path: Path, args, files: list[str] | None) -> Params:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    over = {"seed": args.seed, "device": "cpu", "split": {"strategy": "kfold", "folds": args.folds}}
    if args.epochs:
        over["train"] = {"epochs": args.epochs}
    if files is not None:
        over["data"] = {"folk": {"files": files}}
    return params_from_dict(deep_merge(raw, over), source=str(path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"fast sanity run: {QUICK}")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs of params/folk.yaml")
    ap.add_argument("--sequence", nargs="*", default=SEQUENCE, help="sequence models to compare")
    ap.add_argument("--levels", nargs="*", default=["country", "province"], choices=["country", "province", "files"],
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
    tag = ("folk_quick" if args.quick else "folk") + ("_files" if args.levels == ["files"] else "")
    t0 = time.perf_counter()
    lines = [f"Essen Folksong Collection via music21; torch {torch.__version__}, {args.threads} CPU thread(s). "
             f"Brackets: 95 % bootstrap intervals over tunes ({args.bootstrap} resamples).", ""]
    if "country" in args.levels:
        lines += country_level(level_params(HERE.parent / "params" / "folk.yaml", args, files), args,
                               args.out / f"{tag}_run" / "country") + [""]
    if "files" in args.levels:
        lines += files_level(level_params(HERE.parent / "params" / "folk.yaml", args, files), args) + [""]
    if "province" in args.levels:
        lines += province_level(level_params(HERE.parent / "params" / "folk_china.yaml", args,
                                             ["han1"] if args.quick else None), args, args.out / f"{tag}_run" / "province")
    lines += ["", f"Total {time.perf_counter() - t0:.0f} s."]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{tag}.md").write_text(MADE_AT_STAMP.format(made_at(HERE.parent)) + "\n" + text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
