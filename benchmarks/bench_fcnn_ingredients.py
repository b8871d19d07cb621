"""RealMLP-TD ingredients for the FCNN, one at a time, scored on the inner validation splits of the 10-fold UCI protocol.

    .venv/bin/python benchmarks/bench_fcnn_ingredients.py --threads 1                 # every setting, 10 folds
    .venv/bin/python benchmarks/bench_fcnn_ingredients.py --settings old robust_clip --folds-used 0 1 2
    .venv/bin/python benchmarks/bench_fcnn_ingredients.py --settings old new --test   # + test top-1 (not for choosing)
    PYTHONPATH=/tmp/rmlp_site .venv/bin/python benchmarks/bench_fcnn_ingredients.py --settings old --realmlp 1 5

`--realmlp` needs pytabkit outside the project's environment (never a dependency), e.g.
`.venv/bin/pip install --target /tmp/rmlp_site pytabkit pytorch-lightning torchmetrics lightning-utilities --no-deps`.

Each setting is a params override of the FCNN on top of `--params` (default params/default.yaml, 72
features), trained by `geomusic_lib.training.train_model` on `make_splits` k-fold splits. Per setting:
the mean (± std over folds) of the best validation loss (the early-stopping criterion) and of the
validation accuracy at that epoch, the paired difference to the first setting (mean ± standard error
over folds), the mean best epoch and the wall time per fold. Settings are chosen on these validation
figures only; `--test` adds the test-fold top-1, which is reported, never used to choose. Results are
cached per setting and fold in `--out`.json, so a rerun only trains what is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

OLD = {"robust_clip": False, "embedding": "none", "front_scale": False, "activation": "relu", "parametric": False,
       "batch_norm": True}  # the FCNN before the RealMLP ingredients: Linear → BatchNorm → ReLU → Dropout
#: name → (model.fcnn overrides, train_per_model.fcnn overrides); each adds one ingredient to `old`
SETTINGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "old": (OLD, {}),
    "robust_clip": ({**OLD, "robust_clip": True}, {}),
    "front_scale": ({**OLD, "front_scale": True}, {}),
    "pbld": ({**OLD, "embedding": "pbld"}, {}),
    "piecewise": ({**OLD, "embedding": "piecewise"}, {}),
    "selu": ({**OLD, "activation": "selu"}, {}),
    "silu": ({**OLD, "activation": "silu"}, {}),
    "mish": ({**OLD, "activation": "mish"}, {}),
    "prelu": ({**OLD, "activation": "prelu"}, {}),
    "parametric_relu": ({**OLD, "parametric": True}, {}),
    "parametric_selu": ({**OLD, "activation": "selu", "parametric": True}, {}),
    "no_batch_norm": ({**OLD, "batch_norm": False}, {}),
    "label_smoothing": (OLD, {"label_smoothing": 0.1}),
    "lr_2e-3": (OLD, {"lr": 0.002}),
    "longer": (OLD, {"epochs": 120, "patience": 24}),
    "realmlp_widths": ({**OLD, "hidden": [256, 256, 256], "dropout": 0.15}, {}),
    # round 2: the ingredients that helped alone, combined (greedy on the validation loss)
    "clip+piecewise": ({**OLD, "robust_clip": True, "embedding": "piecewise"}, {}),
    "clip+pbld": ({**OLD, "robust_clip": True, "embedding": "pbld"}, {}),
    "clip+piecewise+scale": ({**OLD, "robust_clip": True, "embedding": "piecewise", "front_scale": True}, {}),
    "clip+pbld+scale": ({**OLD, "robust_clip": True, "embedding": "pbld", "front_scale": True}, {}),
    "realmlp_block": ({**OLD, "robust_clip": True, "embedding": "pbld", "front_scale": True, "batch_norm": False,
                       "activation": "selu", "parametric": True, "hidden": [256, 256, 256], "dropout": 0.15},
                      {"label_smoothing": 0.1}),  # RealMLP-TD's network in this trainer (no NTK, coslog4)
    # round 3: around the best combination (clip+piecewise)
    "cp_bins8": ({**OLD, "robust_clip": True, "embedding": "piecewise", "n_bins": 8}, {}),
    "cp_bins32": ({**OLD, "robust_clip": True, "embedding": "piecewise", "n_bins": 32}, {}),
    "cp_d8": ({**OLD, "robust_clip": True, "embedding": "piecewise", "d_embedding": 8}, {}),
    "cp_dropout0.3": ({**OLD, "robust_clip": True, "embedding": "piecewise", "dropout": 0.3}, {}),
    "cp_label_smoothing": ({**OLD, "robust_clip": True, "embedding": "piecewise"}, {"label_smoothing": 0.1}),
    "new": ({}, {}),  # the schema defaults (params/default.yaml): the FCNN as the book trains it
}


def _limit_threads(threads: int) -> None:
    """One core for torch, BLAS/OpenMP and joblib (set before numpy's BLAS starts its threads)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LOKY_MAX_CPU_COUNT"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _run_fold(name: str, params_path: str, seed: int, n_folds: int, fold: int, threads: int) -> dict[str, float]:
    """Train setting `name` on fold `fold`; its best validation loss, accuracy there, best epoch, test top-1, seconds."""
    from geomusic_lib.core import history_path, load_params
    from geomusic_lib.data import load_uci, make_splits
    from geomusic_lib.training import train_model

    model, train = SETTINGS[name]
    params = load_params(params_path, {"seed": seed, "device": "cpu", "split": {"strategy": "kfold", "folds": n_folds},
                                       "model": {"fcnn": model}, "train_per_model": {"fcnn": {**train, "threads": threads}}})
    table = load_uci()
    split = make_splits(table.frame, params.split, params.seed)[fold]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = train_model("fcnn", table, [split], params, tmp, progress=False)
        res = result.folds[0]
        history = pd.read_csv(history_path(res.checkpoint.parent))
        val_acc = float(history.loc[history.epoch == res.best_epoch, "val_accuracy"].item())
    return {"val_loss": float(res.best_metric), "val_acc": val_acc, "best_epoch": int(res.best_epoch),
            "test_acc": float(res.test_accuracy), "seconds": time.perf_counter() - t0}


def _realmlp_fold(n_cv: int, seed: int, n_folds: int, fold: int, threads: int) -> dict[str, float]:
    """External reference: pytabkit's RealMLP_TD_Classifier (n_cv = 1: one model, 5: bagged) fitted on the
    fold's train + validation rows (raw features; it scales and holds out its own validation rows), scored on
    the test rows. pytabkit is no dependency: put it on PYTHONPATH (see the docstring)."""
    from pytabkit import RealMLP_TD_Classifier

    from geomusic_lib.core import load_params
    from geomusic_lib.data import load_uci, make_splits

    params = load_params("params/default.yaml", {"seed": seed, "split": {"strategy": "kfold", "folds": n_folds}})
    table = load_uci()
    split = make_splits(table.frame, params.split, params.seed)[fold]
    rest, y = np.concatenate([split.train, split.val]), table.label_indices()
    t0 = time.perf_counter()
    model = RealMLP_TD_Classifier(n_cv=n_cv, random_state=seed + fold, n_threads=threads, device="cpu", verbosity=0)
    model.fit(table.features[rest], y[rest])
    acc = float((model.predict(table.features[split.test]) == y[split.test]).mean())
    return {"test_acc": acc, "seconds": time.perf_counter() - t0}


def _summary(name: str, rows: list[dict[str, float]], ref: list[dict[str, float]] | None, test: bool) -> str:
    """One markdown row: mean ± std over folds, the paired difference to the reference (mean ± SE)."""
    def stat(key: str) -> np.ndarray:
        return np.array([r[key] for r in rows])

    def paired(key: str) -> str:
        if ref is None or len(ref) != len(rows):
            return "—"
        d = stat(key) - np.array([r[key] for r in ref])
        return f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0:.3f}"

    cells = [name, f"{stat('val_loss').mean():.3f} ± {stat('val_loss').std():.3f}", paired("val_loss"),
             f"{stat('val_acc').mean():.3f} ± {stat('val_acc').std():.3f}", paired("val_acc"),
             f"{stat('best_epoch').mean():.0f}", f"{stat('seconds').mean():.1f}"]
    if test:
        cells += [f"{stat('test_acc').mean():.3f} ± {stat('test_acc').std():.3f}", paired("test_acc")]
    return "| " + " | ".join(cells) + " |"


def _report(results: dict[str, dict[str, dict[str, float]]], names: list[str], folds: list[int], test: bool) -> str:
    header = ["setting", "val loss", "Δ val loss", "val acc", "Δ val acc", "best epoch", "s / fold"]
    if test:
        header += ["TEST top-1 (not used to choose)", "Δ test top-1"]
    lines = [f"FCNN ingredients, UCI 72 features, folds {folds} of the 10-fold protocol; mean ± std over folds, "
             f"Δ = paired difference to `{names[0]}` (mean ± SE over folds).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ref = [results[names[0]][str(f)] for f in folds]
    for name in names:
        rows = [results[name][str(f)] for f in folds]
        lines.append(_summary(name, rows, ref if name != names[0] else None, test))
    return "\n".join(lines)


def _reference(results: dict[str, dict[str, dict[str, float]]], n_cvs: list[int], folds: list[int]) -> str:
    """The external RealMLP-TD rows (TEST top-1: a reference, not used to choose)."""
    if not n_cvs:
        return ""
    lines = ["", "", "External reference, pytabkit RealMLP_TD_Classifier on train + validation rows, TEST top-1 "
             "(not used to choose):", "", "| model | TEST top-1 | s / fold |", "|---|---|---|"]
    for n_cv in n_cvs:
        rows = [results[f"realmlp_td_n_cv{n_cv}"][str(f)] for f in folds]
        acc, sec = np.array([r["test_acc"] for r in rows]), np.mean([r["seconds"] for r in rows])
        lines.append(f"| RealMLP-TD n_cv={n_cv} | {acc.mean():.3f} ± {acc.std():.3f} | {sec:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS),
                    help="the first one is the reference of the paired differences")
    ap.add_argument("--params", default="params/default.yaml")
    ap.add_argument("--folds", type=int, default=10, help="folds of the protocol")
    ap.add_argument("--folds-used", type=int, nargs="+", default=None, help="which of them to train (default all)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--test", action="store_true", help="also report test-fold top-1 (never used to choose)")
    ap.add_argument("--realmlp", type=int, nargs="*", default=[], metavar="N_CV",
                    help="external reference: pytabkit's RealMLP-TD with these n_cv (1, 5), test top-1 only")
    ap.add_argument("--out", default="benchmarks/out/fcnn_ingredients")
    args = ap.parse_args()
    _limit_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)
    folds = args.folds_used if args.folds_used is not None else list(range(args.folds))
    cache = Path(args.out).with_suffix(".json")
    cache.parent.mkdir(parents=True, exist_ok=True)
    key = f"{args.params}|seed{args.seed}|k{args.folds}"
    stored = json.loads(cache.read_text()) if cache.is_file() else {}
    results = stored.setdefault(key, {})
    for name in args.settings:
        for fold in folds:
            if str(fold) not in results.setdefault(name, {}):
                results[name][str(fold)] = _run_fold(name, args.params, args.seed, args.folds, fold, args.threads)
                cache.write_text(json.dumps(stored, indent=1))
                r = results[name][str(fold)]
                print(f"{name:18s} fold {fold}: val_loss {r['val_loss']:.3f} val_acc {r['val_acc']:.3f} "
                      f"epoch {r['best_epoch']} {r['seconds']:.1f} s", flush=True)
    for n_cv in args.realmlp:
        name = f"realmlp_td_n_cv{n_cv}"
        for fold in folds:
            if str(fold) not in results.setdefault(name, {}):
                results[name][str(fold)] = _realmlp_fold(n_cv, args.seed, args.folds, fold, args.threads)
                cache.write_text(json.dumps(stored, indent=1))
                print(f"{name} fold {fold}: test_acc {results[name][str(fold)]['test_acc']:.3f} "
                      f"{results[name][str(fold)]['seconds']:.1f} s", flush=True)
    report = (_report(results, args.settings, folds, args.test) if args.settings else "") \
        + _reference(results, args.realmlp, folds)
    Path(args.out).with_suffix(".md").write_text(report + "\n", encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
