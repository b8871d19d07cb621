"""Classic baselines on exactly the splits the neural models use: majority class, logistic
regression, random forest, histogram gradient boosting, an RBF support-vector machine and
k nearest neighbours (scikit-learn) on the features, and for melodies an n-gram event model
(`ngram`, after Hillewaere, Manderick & Conklin 2009: `geomusic_lib.training.ngram`).

Baselines have no early stopping, so each fits on the training and validation rows of a
split together (scalers are fitted on those rows only) and predicts the test rows. A second fit
on the training rows alone gives the validation rows' held-out probabilities for the ensemble
(a bagged baseline's members give out-of-fold ones instead).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline, Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from geomusic_lib.data import Split, TrackTable
from geomusic_lib.data.views import check_finite
from geomusic_lib.core.params import Params
from geomusic_lib.predict.predictions import FoldPredictions
from geomusic_lib.core.progress import progress_bar
from geomusic_lib.core.rundir import oof_path, predictions_path
from geomusic_lib.core.threads import free_cores
from geomusic_lib.training.bagging import bag_rows, oof_positions, split_members
from geomusic_lib.training.ngram import melody_inputs, NgramClassifier

BASELINES: dict[str, Callable[[int], ClassifierMixin]] = {
    "majority": lambda seed: DummyClassifier(strategy="prior"),
    "logreg": lambda seed: make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000)),
    "random_forest": lambda seed: RandomForestClassifier(n_estimators=500, n_jobs=-1, random_state=seed),
    "hist_gb": lambda seed: HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                                           max_features=0.5, early_stopping=False,
                                                           random_state=seed),
    # C and k chosen on the inner validation splits of the 10-fold UCI benchmark (benchmarks/README.md).
    # SVC(probability=True) is deprecated in sklearn 1.9, but its pairwise-coupled Platt probabilities
    # beat CalibratedClassifierCV(SVC(), ensemble=False) here (5-fold UCI: 43.8 % vs 37.9 % top-1).
    "svm": lambda seed: make_pipeline(StandardScaler(), SVC(C=10.0, gamma="scale", probability=True, random_state=seed)),
    "knn": lambda seed: make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=10, weights="distance")),
    # reads melodies, not features: viewpoint n-grams (baseline_settings.ngram; benchmarks/bench_ngram.py)
    "ngram": lambda seed: NgramClassifier(),
}
#: baselines whose input is the tunes' melodies (`melody_inputs`) rather than the feature matrix
MELODY_BASELINES = ("ngram",)


SVM_MAX_ROWS = 50_000


def make_baseline(name: str, seed: int, settings: Mapping[str, Any] | None = None) -> ClassifierMixin:
    """A fresh, seeded, unfitted estimator for baseline `name`, with `settings` (estimator
    parameters, e.g. `baseline_settings.random_forest` or a tuning trial's) on top."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    estimator = BASELINES[name](seed)
    settings = dict(settings or {})
    class_weight = settings.pop("class_weight", None)  # the final step's, in a pipeline
    try:
        if settings:
            estimator.set_params(**settings)
        if class_weight is not None:
            (estimator[-1] if isinstance(estimator, Pipeline) else estimator).set_params(class_weight=class_weight)
    except ValueError as err:
        raise ValueError(f"baseline_settings.{name}: {str(err).splitlines()[0]}") from None
    return estimator


def fit_baseline(name: str, seed: int, x: np.ndarray, y: np.ndarray,
                 settings: Mapping[str, Any] | None = None) -> ClassifierMixin:
    """`make_baseline(name, seed, settings)` fitted on (x, y), without sklearn's SVC `probability` deprecation warning.

    `settings["max_train_rows"]` (tree baselines) fits on a seeded random subsample of that many rows,
    so the costly baselines stay affordable on ~300K MIRAGE tracks; an SVM on more than
    `SVM_MAX_ROWS` rows is refused (its fit grows about quadratically).
    """
    settings = dict(settings or {})
    cap = settings.pop("max_train_rows", None)
    if cap is not None and len(x) > int(cap):
        keep = np.sort(np.random.default_rng(seed).choice(len(x), size=int(cap), replace=False))
        x, y = x[keep], y[keep]
    if name == "svm" and len(x) > SVM_MAX_ROWS:
        raise ValueError(f"baseline svm: {len(x):,} training rows; an RBF SVM fits in about quadratic time and is "
                         f"refused above {SVM_MAX_ROWS:,}. Remove 'svm' from `baselines` (or set data.max_tracks).")
    with warnings.catch_warnings(), threadpool_limits(limits=free_cores(), user_api="openmp"):
        # OpenMP threads on cores other processes hold spin: hist_gb took 162 s instead of 3 s on a loaded machine
        warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated", category=FutureWarning)
        return make_baseline(name, seed, settings).fit(x, y)


def baseline_proba(estimator: ClassifierMixin, x: np.ndarray, n_classes: int) -> np.ndarray:
    """`(n, n_classes)` probabilities, with zero columns for classes absent from the training rows."""
    proba = np.zeros((len(x), n_classes))
    proba[:, estimator.classes_] = estimator.predict_proba(x)
    return proba


def baseline_inputs(table: TrackTable, names: Sequence[str], melodies: pd.DataFrame | None = None
                    ) -> dict[str, np.ndarray]:
    """Each baseline's input rows: the feature matrix (checked finite), or the tunes' viewpoints for
    `MELODY_BASELINES` (from the table or `melodies`; an error when there are none)."""
    inputs: dict[str, np.ndarray] = {}
    if any(name in MELODY_BASELINES for name in names):
        inputs["melodies"] = melody_inputs(table, melodies)
    if any(name not in MELODY_BASELINES for name in names):
        x = table.features
        check_finite(x, "features", names=table.feature_names, row_ids=table.frame["track_id"].to_numpy(),
                     fix="Impute or drop those tracks.")
        inputs["features"] = x
    return {name: inputs["melodies" if name in MELODY_BASELINES else "features"] for name in names}


def run_baselines(table: TrackTable, splits: Sequence[Split], params: Params, out_dir: str | Path,
                  names: Sequence[str] | None = None, progress: bool = True,
                  melodies: pd.DataFrame | None = None) -> dict[str, Path]:
    """Fit every baseline in `names` (default `params.baselines`) on each split; write
    `out_dir/<name>/predictions.parquet` (test rows) and `oof.parquet` (held-out rows, which the
    ensemble is fitted on: out-of-fold training rows when bagged, else the validation rows).
    `melodies` (`track_id` + note arrays) feeds `ngram` when the table holds only features."""
    names = list(params.baselines if names is None else names)
    params = params.for_tracks(len(table.frame))  # `train.bagging.folds: auto` made a number
    for name in names:
        if name not in BASELINES:
            raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    inputs = baseline_inputs(table, names, melodies)
    classes = table.classes()
    y = table.label_indices()
    written: dict[str, Path] = {}
    for name in progress_bar(names, desc="baselines", enabled=progress):
        x = inputs[name]
        collected, held_out = FoldPredictions(table.frame, classes), FoldPredictions(table.frame, classes)
        for split in splits:
            if len(split.train) + len(split.val) == 0:
                raise ValueError(f"baseline {name}: the training split of fold {split.fold} is empty")
            members = split_members(table, split, params)
            if len(members) == 1:
                collected.add(split.fold, split.test, single_baseline(name, x, y, split, params, len(classes)))
                if len(split.val):
                    held_out.add(split.fold, split.val, validation_baseline(name, x, y, split, params, len(classes)))
                continue
            test, out_of_fold = bagged_baseline(name, x, y, split, members, params, len(classes))
            collected.add(split.fold, split.test, test)
            held_out.add(split.fold, bag_rows(split), out_of_fold)
        written[name] = collected.write(predictions_path(Path(out_dir) / name))
        if held_out.parts:
            held_out.write(oof_path(Path(out_dir) / name))
    return written


def single_baseline(name: str, x: np.ndarray, y: np.ndarray, split: Split, params: Params,
                    n_classes: int) -> np.ndarray:
    """Baseline `name` fitted on the split's training and validation rows (it has no early stopping),
    on the test rows."""
    fit_rows = np.concatenate([split.train, split.val]).astype(int)
    estimator = fit_baseline(name, params.seed + max(split.fold, 0), x[fit_rows], y[fit_rows],
                             params.baseline_settings_for(name))
    return baseline_proba(estimator, x[split.test], n_classes)


def validation_baseline(name: str, x: np.ndarray, y: np.ndarray, split: Split, params: Params,
                        n_classes: int) -> np.ndarray:
    """Baseline `name` fitted on the split's training rows only, on its validation rows: the held-out
    probabilities an unbagged run's ensemble is fitted on."""
    estimator = fit_baseline(name, params.seed + max(split.fold, 0), x[split.train], y[split.train],
                             params.baseline_settings_for(name))
    return baseline_proba(estimator, x[split.val], n_classes)


def bagged_baseline(name: str, x: np.ndarray, y: np.ndarray, split: Split, members: Sequence[Split], params: Params,
                    n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Baseline `name` fitted once per bag member: the mean of the members' test probabilities, and
    each training row's probability from the member that left it out (in `bag_rows` order)."""
    rows = bag_rows(split)
    out_of_fold, test = np.zeros((len(rows), n_classes)), np.zeros((len(split.test), n_classes))
    for j, member in enumerate(members):
        estimator = fit_baseline(name, params.seed + max(split.fold, 0) + 1000 * j, x[member.train], y[member.train],
                                 params.baseline_settings_for(name))
        out_of_fold[oof_positions(rows, member.val)] = baseline_proba(estimator, x[member.val], n_classes)
        test += baseline_proba(estimator, x[split.test], n_classes) / len(members)
    return test, out_of_fold
