"""10-fold stratified CV on UCI for every model and baseline: top-1 / top-5 accuracy and mean and
median great-circle error (km), with the arg-max and the distance-aware decision, plus an
ensemble whose member weights and temperatures are fitted on each fold's validation rows.

    .venv/bin/python benchmarks/bench_uci_cv.py            # full run (about 15-20 min on 1 CPU core)
    .venv/bin/python benchmarks/bench_uci_cv.py --quick    # 3 folds, 3 epochs, a few members (under a minute)

Writes the markdown table to `benchmarks/out/uci_cv.md` (`--quick`: `uci_cv_quick.md`), which
`benchmarks/update_readme.py` pastes into the README. Runs resume: networks already trained
under `benchmarks/out/uci_cv_run/` with the same params are reused (the trainer's resume), and
baselines whose estimator, seed and folds are unchanged are read back.

Protocol (see benchmarks/README.md): every model reads the same `make_splits(kfold)` splits.
Networks early-stop on the fold's validation rows; baselines fit on train + validation. The
ensemble never sees test rows while it is fitted: for each fold, every member's probabilities on
that fold's *validation* rows (networks: the early-stopped checkpoint; baselines: a second fit on
the training rows only) give a temperature per member, greedy log-loss weights and a final
temperature (`geomusic_lib.ensemble.fit_ensemble`), which are then applied to the member's test
probabilities of the same fold.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
import yaml
from threadpoolctl import threadpool_limits

from geomusic_lib.baselines import make_baseline, run_baselines
from geomusic_lib.data import Split, load_uci, make_splits
from geomusic_lib.data.store import class_table
from geomusic_lib.ensemble import fit_ensemble
from geomusic_lib.evaluate import evaluate_predictions
from geomusic_lib.params import deep_merge, params_from_dict
from geomusic_lib.predict import Predictor
from geomusic_lib.predictions import Predictions, read_predictions
from geomusic_lib.train import train_model

HERE = Path(__file__).resolve().parent
MODELS = ["fcnn", "cnn", "rnn", "attention"]
BASELINES = ["majority", "logreg", "random_forest", "hist_gb", "svm", "knn"]
#: Ensemble candidates, fixed before any test fold was scored. Weights (0 drops a member) and
#: temperatures are fitted per fold on validation rows. hist_gb is left out only for run time
#: (it would need a second, train-only fit, about 1 min more); majority carries no information.
CANDIDATES = ["fcnn", "fcnn_seeds", "cnn", "rnn", "attention", "logreg", "svm", "svm_68", "knn", "random_forest"]
#: Extra ensemble members: the FCNN retrained with other seeds on the same folds (averaged into one
#: member, `fcnn_seeds`), and the SVM on the 68 features without chroma (`svm_68`).
FCNN_SEEDS = [1042, 2042, 3042, 4042]
QUICK = {"folds": 3, "epochs": 3, "models": ["fcnn", "cnn"], "baselines": ["majority", "logreg", "svm"], "bootstrap": 200,
         "fcnn_seeds": 1}


def _scores(pred: Predictions, classes: pd.DataFrame, seed: int, bootstrap: int) -> dict[str, object]:
    """Accuracy and great-circle error with 95 % bootstrap intervals, for both decisions."""
    out: dict[str, object] = {}
    for decision in ("argmax", "distance"):
        m = evaluate_predictions(pred, classes, decision=decision, bootstrap=bootstrap, seed=seed)
        for key, short in (("accuracy", "acc"), ("mean_km", "km")):
            out[f"{short}_{decision}"] = (m[key], m[f"{key}_ci_low"], m[f"{key}_ci_high"])
        out[f"median_{decision}"] = m["median_km"]
        out["top5"] = m["top5_accuracy"]
    return out


def _sorted(pred: Predictions) -> Predictions:
    order = np.argsort(pred.track_ids, kind="stable")
    return Predictions(pred.track_ids[order], pred.fold[order], pred.y_true[order], pred.proba[order],
                       pred.classes, pred.true_lat[order], pred.true_lon[order])


def _baseline(name: str, table, splits, params, run_dir: Path) -> float:
    """Fit baseline `name` unless an identical fit (estimator, seed, folds) is stored; returns seconds."""
    key = json.dumps({"estimator": repr(make_baseline(name, params.seed)), "sklearn": sklearn.__version__,
                      "seed": params.seed,
                      "features": list(table.feature_names),
                      "rows": [[s.train.tolist(), s.val.tolist(), s.test.tolist()] for s in splits]})
    key_file = run_dir / name / "cache.json"
    if key_file.is_file() and (run_dir / name / "predictions.parquet").is_file():
        stored = json.loads(key_file.read_text())
        if stored["key"] == key:
            return stored["seconds"]
    t = time.perf_counter()
    run_baselines(table, splits, params, run_dir, names=[name], progress=False)
    seconds = time.perf_counter() - t
    key_file.write_text(json.dumps({"key": key, "seconds": seconds}))
    return seconds


def _network_val_proba(name: str, table, split: Split, model_dir: Path) -> np.ndarray:
    """Probabilities of the fold's early-stopped checkpoint on the fold's validation rows."""
    predictor = Predictor.from_checkpoint(model_dir / f"fold_{split.fold}" / "checkpoint_best.pt", device="cpu")
    assert predictor.classes == table.classes()
    return predictor.predict_proba(table.frame.iloc[split.val])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"fast sanity run: {QUICK}")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--params", type=Path, default=HERE.parent / "params" / "default.yaml",
                    help="model and training settings (default: the book's params/default.yaml); "
                         "the split is replaced by k folds")
    ap.add_argument("--overlay", type=Path, default=None,
                    help="a params file merged on top of --params, to benchmark other settings")
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS/OpenMP threads, joblib workers")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--baselines", nargs="*", default=BASELINES)
    ap.add_argument("--fcnn-seeds", type=int, default=len(FCNN_SEEDS),
                    help="extra FCNN seeds averaged into the `fcnn_seeds` ensemble member (0: none)")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(args.threads)
    os.environ["LOKY_MAX_CPU_COUNT"] = str(args.threads)  # random_forest's n_jobs=-1 → this many workers
    threadpool_limits(args.threads)

    table = load_uci()
    overrides = {"seed": args.seed, "device": "cpu", "split": {"strategy": "kfold", "folds": args.folds}}
    if args.epochs:
        overrides["train"] = {"epochs": args.epochs}
    raw = yaml.safe_load(args.params.read_text(encoding="utf-8"))
    if args.overlay:
        raw = deep_merge(raw, yaml.safe_load(args.overlay.read_text(encoding="utf-8")) or {})
    params = params_from_dict(deep_merge(raw, overrides), source=str(args.params))
    splits = make_splits(table.frame, params.split, params.seed)

    tag = "uci_cv_quick" if args.quick else "uci_cv"
    run_dir = args.out / f"{tag}_run" / "models"
    val_dir = args.out / f"{tag}_run" / "val_fits"  # baselines fitted on training rows only, scored on validation rows
    run_dir.mkdir(parents=True, exist_ok=True)
    val_dir.mkdir(parents=True, exist_ok=True)
    classes = class_table(table.frame)
    y_all = table.label_indices()

    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    for name in args.baselines:
        seconds[name] = _baseline(name, table, splits, params, run_dir)
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
    for name in args.models:
        t = time.perf_counter()
        train_model(name, table, splits, params, run_dir / name, progress=False)
        seconds[name] = time.perf_counter() - t
        print(f"{name}: {seconds[name]:.0f} s", flush=True)
    # ensemble-only members (also scored on their own, below the line)
    extra: dict[str, list[str]] = {}  # member -> prediction folders averaged into it
    table68 = load_uci(chromatic=False)
    assert (table68.frame["track_id"] == table.frame["track_id"]).all() and \
        (table68.frame["label"] == table.frame["label"]).all()
    if "svm" in args.baselines:
        seconds["svm_68"] = _baseline("svm", table68, splits, params, run_dir / "svm_68")
        extra["svm_68"] = ["svm_68/svm"]
        print(f"svm_68: {seconds['svm_68']:.0f} s", flush=True)
    if "fcnn" in args.models and args.fcnn_seeds:
        t = time.perf_counter()
        extra["fcnn_seeds"] = ["fcnn"]
        for seed in FCNN_SEEDS[:args.fcnn_seeds]:
            train_model("fcnn", table, splits, params.model_copy(update={"seed": seed}), run_dir / f"fcnn_seed{seed}",
                        progress=False)
            extra["fcnn_seeds"].append(f"fcnn_seed{seed}")
        seconds["fcnn_seeds"] = seconds["fcnn"] + time.perf_counter() - t
        print(f"fcnn_seeds: {seconds['fcnn_seeds']:.0f} s", flush=True)

    # ---- out-of-fold test predictions, all on the same rows and folds
    preds: dict[str, Predictions] = {}
    for name in [*args.baselines, *args.models]:
        pred = _sorted(read_predictions(run_dir / name / "predictions.parquet"))
        if preds:
            ref = next(iter(preds.values()))
            assert (pred.track_ids == ref.track_ids).all() and (pred.fold == ref.fold).all(), \
                f"{name} was not evaluated on the same folds"
        preds[name] = pred
    for name, folders in extra.items():
        parts = [_sorted(read_predictions(run_dir / f / "predictions.parquet")) for f in folders]
        ref = next(iter(preds.values()))
        assert all((p.track_ids == ref.track_ids).all() and (p.fold == ref.fold).all() for p in parts), name
        preds[name] = Predictions(ref.track_ids, ref.fold, ref.y_true, np.mean([p.proba for p in parts], axis=0),
                                  ref.classes, ref.true_lat, ref.true_lon)
    rows = {name: _scores(pred, classes, args.seed, args.bootstrap) for name, pred in preds.items()}

    # ---- ensemble: per fold, fitted on validation rows only
    members = [m for m in CANDIDATES if m in preds]
    ens_info = []
    if len(members) > 1:
        t = time.perf_counter()
        val_splits = [Split(s.fold, s.train, np.array([], dtype=int), s.val) for s in splits]
        val_proba: dict[str, dict[int, np.ndarray]] = {m: {} for m in members}
        position = {tid: i for i, tid in enumerate(table.frame["track_id"])}
        for m in members:
            if m in args.models or m == "fcnn_seeds":
                folders = extra.get(m, [m])
                for s in splits:
                    val_proba[m][s.fold] = np.mean([_network_val_proba(m.split("_")[0], table, s, run_dir / f)
                                                    for f in folders], axis=0)
            else:
                base, src = (m, table) if m != "svm_68" else ("svm", table68)
                _baseline(base, src, val_splits, params, val_dir / m)
                vp = read_predictions(val_dir / m / base / "predictions.parquet")
                for s in splits:
                    here = vp.fold == s.fold
                    assert [position[tid] for tid in vp.track_ids[here]] == s.val.tolist()
                    val_proba[m][s.fold] = vp.proba[here]
        ref = preds[members[0]]
        proba = np.zeros_like(ref.proba)
        for s in splits:
            ens = fit_ensemble({m: val_proba[m][s.fold] for m in members}, y_all[s.val])
            test_rows = ref.fold == s.fold
            proba[test_rows] = ens.predict({m: preds[m].proba[test_rows] for m in members})
            ens_info.append(ens)
        name = "ensemble (validation-fitted weights and temperatures)"
        rows[name] = _scores(Predictions(ref.track_ids, ref.fold, ref.y_true, proba, ref.classes, ref.true_lat,
                                         ref.true_lon), classes, args.seed, args.bootstrap)
        seconds[name] = time.perf_counter() - t

    # ---- table
    settings = f"`{args.params.name}`" + (f" + `{args.overlay.name}`" if args.overlay else "")
    lines = [
        f"UCI Geographical Original of Music, {len(table.frame)} tracks, {len(classes)} classes, "
        f"{args.folds}-fold stratified CV (seed {args.seed}), out-of-fold predictions of every track; "
        f"network settings from {settings}" + (f", {args.epochs} epochs" if args.epochs else "")
        + f"; torch {torch.__version__}, {args.threads} CPU thread(s), total {time.perf_counter() - t0:.0f} s. "
        f"Brackets: 95 % bootstrap intervals over tracks ({args.bootstrap} resamples). Distance-aware: the class "
        "with the least expected great-circle distance under the model's probabilities.",
        "",
        "| model | top-1 (argmax) | top-5 | mean km (argmax) | median km (argmax) "
        "| top-1 (distance-aware) | mean km (distance-aware) | median km (distance-aware) | time s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def pct(v):
        return f"{v[0]:.1%} ({v[1]:.1%}–{v[2]:.1%})"

    def km(v):
        return f"{v[0]:,.0f} ({v[1]:,.0f}–{v[2]:,.0f})"

    display = {"fcnn_seeds": f"fcnn_seeds (mean of {1 + args.fcnn_seeds} seeds)", "svm_68": "svm_68 (68 features, no chroma)"}
    for name, s in rows.items():
        took = f"{seconds[name]:.0f}" if name in seconds else "–"
        lines.append(f"| {display.get(name, name)} | {pct(s['acc_argmax'])} | {s['top5']:.1%} | {km(s['km_argmax'])} | "
                     f"{s['median_argmax']:,.0f} | {pct(s['acc_distance'])} | {km(s['km_distance'])} | "
                     f"{s['median_distance']:,.0f} | {took} |")
    if ens_info:
        weights = pd.DataFrame([e.weights for e in ens_info], columns=ens_info[0].members)
        temps = [e.temperature for e in ens_info]
        lines += ["", "Ensemble members (mean weight over folds; each fold fits its own on its validation rows): "
                  + ", ".join(f"{m} {w:.2f}" for m, w in weights.mean().items() if w > 0)
                  + f"; final temperature {np.mean(temps):.2f} (range {min(temps):.2f}–{max(temps):.2f}). "
                  "Candidates: " + ", ".join(members) + "."]
    lines += ["", "Reference: Zhou, Q & King (2014) report a mean error of 3,113 km with random-forest regression "
              "on the coordinates (their own protocol)."]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{tag}.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
