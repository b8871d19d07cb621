"""The `ngram` event-model baseline against the global-feature baselines on the folk tasks, after
Hillewaere, Manderick & Conklin (ISMIR 2009), who found n-grams over melodic events beat global features.

    .venv/bin/python benchmarks/bench_ngram.py --configs default     # the defaults, both levels (~6 min)
    .venv/bin/python benchmarks/bench_ngram.py --levels province      # every setting, Chinese provinces (~8 min)

Protocol: the project's own 5-fold splits (stratified by class, grouped by tune variant; params/folk.yaml
for countries, params/folk_china.yaml for provinces, `split.strategy: kfold`). Each n-gram setting is
scored on the validation rows of every fold, fitted on that fold's training rows only; the one with the
best mean validation balanced accuracy is chosen. Then the chosen setting and the global-feature
baselines (logistic regression, random forest; balanced class weights, as `train.class_weights` gives
them) fit on training + validation rows and predict the test rows. No fold's test rows choose its
setting, but one setting is chosen for all folds from every fold's validation rows, and a fold's validation
rows are test rows of another fold: the choice is not nested, so the n-gram's figures carry a small
optimistic bias against the untuned baselines (about 20 settings were compared). Brackets:
95 % bootstrap intervals over tunes. `baseline_settings.ngram`'s defaults are the setting with the best
validation balanced accuracy averaged over both levels (ties: validation top-1).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import yaml
from threadpoolctl import threadpool_limits

from geomusic_lib.core import deep_merge, Params, params_from_dict
from geomusic_lib.core.params import NgramSettings
from geomusic_lib.data import load_folk_tracks, make_splits, Split, TrackTable
from geomusic_lib.features import notes_features
from geomusic_lib.training import baseline_proba, fit_baseline
from geomusic_lib.training.ngram import melody_inputs

HERE = Path(__file__).resolve().parent
#: The issue's quick check: four viewpoints, 1- to 4-grams, C = 3.
ISSUE = {"viewpoints": ["interval", "interval*duration", "degree", "degree*duration"], "orders": [1, 2, 3, 4],
         "C": 3.0}
RATIO_METRIC = ["interval", "interval*duration_ratio", "degree", "degree*duration", "contour*metric",
                "degree*metric"]
#: The n-gram settings tried (each on top of baseline_settings.ngram's defaults; `default` is those).
CONFIGS: dict[str, dict] = {
    "default": {},
    "issue": ISSUE,
    "issue_mindf1": {**ISSUE, "min_df": 1},
    **{f"issue_C{c:g}": {**ISSUE, "C": c} for c in (0.1, 0.3, 1.0, 10.0)},
    "issue_orders1-3": {**ISSUE, "orders": [1, 2, 3]},
    "issue_orders1-5": {**ISSUE, "orders": [1, 2, 3, 4, 5]},
    "issue_counts_C0.3": {**ISSUE, "weighting": "counts", "C": 0.3},
    "six_single": {**ISSUE, "viewpoints": ["interval", "contour", "degree", "duration", "duration_ratio", "metric"]},
    **{f"ratio_metric_C{c:g}": {**ISSUE, "viewpoints": RATIO_METRIC, "C": c} for c in (0.3, 1.0, 3.0, 10.0)},
    "ratio_metric_C3_orders1-3": {**ISSUE, "viewpoints": RATIO_METRIC, "orders": [1, 2, 3]},
}
PARAMS = {"province": "folk_china.yaml", "country": "folk.yaml"}


def level_data(level: str, seed: int, folds: int) -> tuple[TrackTable, np.ndarray, list[Split], Params]:
    """The labelled tunes with their global features, their viewpoints, and the 5-fold grouped splits."""
    raw = yaml.safe_load((HERE.parent / "params" / PARAMS[level]).read_text(encoding="utf-8"))
    params = params_from_dict(deep_merge(raw, {"seed": seed, "split": {"strategy": "kfold", "folds": folds},
                                               "data": {"folk": {"workers": 1}}}), source=PARAMS[level])
    table = load_folk_tracks(params.data.folk, progress=False)
    feats, _ = notes_features(table.frame, progress=False)
    frame = table.frame.join(feats, on="track_id", how="inner").reset_index(drop=True)
    table = TrackTable(frame, list(feats.columns), "folk", table.notes)
    return table, melody_inputs(table), make_splits(table.frame, params.split, params.seed), params


def balanced(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    recall = [np.mean(pred[y == c] == c) for c in range(k) if np.any(y == c)]
    return float(np.mean(recall))


def with_interval(y: np.ndarray, pred: np.ndarray, k: int, reps: int, seed: int) -> dict[str, tuple]:
    """Top-1 and balanced accuracy with 95 % bootstrap intervals over tunes."""
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(y), len(y)) for _ in range(reps)]
    out = {}
    for name, score in (("top1", lambda a, b: float(np.mean(a == b))), ("balanced", lambda a, b: balanced(a, b, k))):
        boot = [score(y[d], pred[d]) for d in draws]
        out[name] = (score(y, pred), *np.percentile(boot, [2.5, 97.5]))
    return out


def fit_proba(name: str, settings: dict, x: np.ndarray, y: np.ndarray, fit: np.ndarray, rows: np.ndarray,
              seed: int, k: int) -> np.ndarray:
    return baseline_proba(fit_baseline(name, seed, x[fit], y[fit], settings), x[rows], k)


def validation_scores(config: dict, docs: np.ndarray, y: np.ndarray, splits: list[Split], params: Params,
                      k: int) -> tuple[float, float, float]:
    """Mean validation balanced accuracy and top-1 of an n-gram setting (fitted on training rows), seconds."""
    settings = {**params.baseline_settings_for("ngram"), **config}
    start, bal, top = time.perf_counter(), [], []
    for s in splits:
        pred = fit_proba("ngram", settings, docs, y, s.train, s.val, params.seed + s.fold, k).argmax(1)
        bal.append(balanced(y[s.val], pred, k))
        top.append(float(np.mean(pred == y[s.val])))
    return float(np.mean(bal)), float(np.mean(top)), time.perf_counter() - start


def test_predictions(name: str, settings: dict, x: np.ndarray, y: np.ndarray, splits: list[Split], seed: int,
                     k: int) -> tuple[np.ndarray, float]:
    """Out-of-fold test predictions (fit on training + validation rows) and seconds."""
    start, pred = time.perf_counter(), np.full(len(y), -1)
    for s in splits:
        fit = np.concatenate([s.train, s.val])
        pred[s.test] = fit_proba(name, settings, x, y, fit, s.test, seed + s.fold, k).argmax(1)
    return pred, time.perf_counter() - start


def pct(t: tuple) -> str:
    return f"{t[0]:.1%} ({t[1]:.1%}–{t[2]:.1%})"


def run_level(level: str, configs: list[str], args) -> list[str]:
    start = time.perf_counter()
    table, docs, splits, params = level_data(level, args.seed, args.folds)
    y, k = table.label_indices(), len(table.classes())
    print(f"{level}: {len(y)} tunes, {k} classes, loaded in {time.perf_counter() - start:.0f} s", flush=True)
    lines = [f"## {level}: {len(y)} tunes, {k} classes, {args.folds}-fold CV grouped by variant, seed {args.seed}",
             "", "n-gram settings, scored on each fold's validation rows (fit on its training rows):", "",
             "| setting | viewpoints | orders | C | weighting | val. balanced acc. | val. top-1 | time s |",
             "|---|---|---|---:|---|---:|---:|---:|"]
    val = {}
    for name in configs:
        settings = {**params.baseline_settings_for("ngram"), **CONFIGS[name]}
        shown = NgramSettings(**{key: v for key, v in settings.items()})
        val[name] = validation_scores(CONFIGS[name], docs, y, splits, params, k)
        lines.append(f"| {name} | {', '.join(shown.viewpoints)} | {shown.orders} | {shown.C:g} | {shown.weighting}"
                     f" (min_df {shown.min_df}) | {val[name][0]:.1%} | {val[name][1]:.1%} | {val[name][2]:.0f} |")
        print(lines[-1], flush=True)
    chosen = max(val, key=lambda n: val[n][0])
    rows = [("ngram", f"ngram ({chosen})", {**params.baseline_settings_for("ngram"), **CONFIGS[chosen]}, docs),
            ("logreg", "logreg", params.baseline_settings_for("logreg"), table.features),
            ("random_forest", "random_forest", {**params.baseline_settings_for("random_forest"), "n_jobs": 1},
             table.features)]
    lines += ["", f"Test rows, out of fold (chosen on validation: {chosen}):", "",
              "| model | input | top-1 | balanced accuracy | time s |", "|---|---|---:|---:|---:|"]
    for base, label, settings, x in rows:
        pred, seconds = test_predictions(base, settings, x, y, splits, params.seed, k)
        r = with_interval(y, pred, k, args.bootstrap, args.seed)
        kind = "melodic n-grams" if base == "ngram" else f"{len(table.feature_names)} global features"
        lines.append(f"| {label} | {kind} | {pct(r['top1'])} | {pct(r['balanced'])} | {seconds:.0f} |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", nargs="*", default=["province", "country"], choices=list(PARAMS))
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "ngram.md")
    args = ap.parse_args()
    os.environ["LOKY_MAX_CPU_COUNT"] = str(args.threads)
    threadpool_limits(args.threads)
    t0 = time.perf_counter()
    lines = [f"Brackets: 95 % bootstrap intervals over tunes ({args.bootstrap} resamples).", ""]
    for level in args.levels:
        lines += run_level(level, args.configs, args) + [""]
    lines.append(f"Total {time.perf_counter() - t0:.0f} s.")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
