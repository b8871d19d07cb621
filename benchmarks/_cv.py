"""What the cross-validation benchmarks share (bench_uci_cv.py, bench_folk.py): cached baselines, every
member's out-of-fold test predictions, the held-out probabilities their training wrote, the ensemble
fitted on those, and the protocol sentence of a results table. Not a benchmark itself.

Every member writes `predictions.parquet` (its test rows) and `oof.parquet` (its held-out rows: the
out-of-fold training rows when bagged, else the validation rows) as it trains; nothing here refits a
model or reloads a checkpoint.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import sklearn

from geomusic_lib.core import Params, predictions_path
from geomusic_lib.core.rundir import oof_path
from geomusic_lib.predict import Predictions, read_predictions
from geomusic_lib.training import ensemble_over_splits, make_baseline, MemberProbabilities, run_baselines


def cached_baseline(name: str, table, splits, params: Params, models_dir: Path) -> float:
    """Fit baseline `name` unless an identical fit (estimator, settings, bagging, seed, features, folds)
    is stored under `models_dir`; returns its seconds."""
    key = json.dumps({"estimator": repr(make_baseline(name, params.seed)), "sklearn": sklearn.__version__,
                      "settings": params.baseline_settings_for(name), "bagging": params.train.bagging.folds,
                      "duplicates": params.data.duplicates, "labels": table.label_indices().tolist(),
                      "seed": params.seed, "features": list(table.feature_names),
                      "rows": [[s.train.tolist(), s.val.tolist(), s.test.tolist()] for s in splits]}, default=str)
    key_file = Path(models_dir) / name / "cache.json"
    if key_file.is_file() and all(p(Path(models_dir) / name).is_file() for p in (predictions_path, oof_path)):
        stored = json.loads(key_file.read_text())
        if stored["key"] == key:
            return stored["seconds"]
    t = time.perf_counter()
    run_baselines(table, splits, params, models_dir, names=[name], progress=False)
    seconds = time.perf_counter() - t
    key_file.write_text(json.dumps({"key": key, "seconds": seconds}))
    return seconds


def sorted_predictions(pred: Predictions) -> Predictions:
    order = np.argsort(pred.track_ids, kind="stable")
    return Predictions(pred.track_ids[order], pred.fold[order], pred.y_true[order], pred.proba[order],
                       pred.classes, pred.true_lat[order], pred.true_lon[order])


def out_of_fold(names: Sequence[str], models_dir: Path, extra: dict[str, list[str]] | None = None
                ) -> dict[str, Predictions]:
    """Every member's out-of-fold test predictions, all on the same rows and folds (an `extra` member is
    the mean of the folders it lists)."""
    extra = extra or {}
    preds: dict[str, Predictions] = {}
    for name in [*names, *extra]:
        parts = [sorted_predictions(read_predictions(predictions_path(models_dir / f))) for f in extra.get(name, [name])]
        if preds:
            ref = next(iter(preds.values()))
            assert all((p.track_ids == ref.track_ids).all() and (p.fold == ref.fold).all() for p in parts), \
                f"{name} was not evaluated on the same folds"
        ref = parts[0]
        preds[name] = Predictions(ref.track_ids, ref.fold, ref.y_true, np.mean([p.proba for p in parts], axis=0),
                                  ref.classes, ref.true_lat, ref.true_lon)
    return preds


def held_out_probas(m: str, table, splits, params: Params, models_dir: Path,
                    extra: dict[str, list[str]] | None = None) -> dict[int, np.ndarray]:
    """Member `m` on each fold's held-out rows, read from the `oof.parquet` its training wrote
    (averaged over an extra member's folders)."""
    from geomusic_lib.training.ensemble_members import expected_held_out, stored_test_proba

    held = [read_predictions(oof_path(models_dir / f)) for f in (extra or {}).get(m, [m])]
    bagged = params.train.bagging.folds > 1
    return {s.fold: np.mean([stored_test_proba(m, h, table, s, expected_held_out(s, bagged)) for h in held], axis=0)
            for s in splits}


def held_out_rows(splits, params: Params) -> list[np.ndarray]:
    """Each fold's held-out rows (out-of-fold training rows when bagged, else the validation rows)."""
    from geomusic_lib.training.ensemble_members import expected_held_out

    return [expected_held_out(s, params.train.bagging.folds > 1) for s in splits]


def ensemble(members: Sequence[str], table, splits, params: Params, models_dir: Path,
             preds: dict[str, Predictions], extra: dict[str, list[str]] | None = None) -> tuple[Predictions, list]:
    """The ensemble of `members`, fitted per fold on their held-out rows with the run's objective
    (`geomusic_lib.training.ensemble.ensemble_over_splits`), on each fold's test rows."""
    held = {m: held_out_probas(m, table, splits, params, models_dir, extra) for m in members}
    ref = preds[members[0]]
    per_split = [{m: MemberProbabilities(held[m][s.fold], preds[m].proba[ref.fold == s.fold]) for m in members}
                 for s in splits]
    y = table.label_indices()
    fitted, test = ensemble_over_splits(per_split, [y[r] for r in held_out_rows(splits, params)],
                                        [{"fold": s.fold} for s in splits], objective=params.ensemble_objective())
    proba = np.zeros_like(ref.proba)
    for s, p in zip(splits, test):
        proba[ref.fold == s.fold] = p
    return Predictions(ref.track_ids, ref.fold, ref.y_true, proba, ref.classes, ref.true_lat, ref.true_lon), fitted


def protocol(params: Params) -> str:
    """The bagging, class weighting and ensemble objective in force, in one sentence."""
    k = params.train.bagging.folds
    bagging = (f"Every model is a bag of {k} members per outer fold (each trained on {k - 1} of {k} parts of the "
               "fold's training rows, early-stopped on the part left out)" if k > 1 else
               "One model per outer fold (networks early-stop on its validation rows)")
    weighting = "classes weighted (balanced) for every model" if params.train.class_weights else "classes unweighted"
    return f"{bagging}; {weighting}; ensemble objective {params.ensemble_objective()}."


def ensemble_weights(fitted: list, candidates: Sequence[str]) -> str:
    """The mean weight of each member over the folds, the final temperature, and the candidates."""
    import pandas as pd

    weights = pd.DataFrame([e.weights for e in fitted], columns=fitted[0].members)
    temps = [e.temperature for e in fitted]
    return ("Ensemble members (mean weight over folds; each fold fits its own on its held-out rows): "
            + ", ".join(f"{m} {w:.2f}" for m, w in weights.mean().items() if w > 0)
            + f"; final temperature {np.mean(temps):.2f} (range {min(temps):.2f}–{max(temps):.2f}). "
            "Candidates: " + ", ".join(candidates) + ".")


def pct(v) -> str:
    return f"{v[0]:.1%} ({v[1]:.1%}–{v[2]:.1%})"


def km(v) -> str:
    return f"{v[0]:,.0f} ({v[1]:,.0f}–{v[2]:,.0f})"
