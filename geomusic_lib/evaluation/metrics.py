"""Metrics that say how well a model places music on the map.

Evaluation reads only `predictions.parquet` (see `geomusic_lib.predict.predictions`) and
`data/classes.csv`; it never trains. Point estimates use scikit-learn; the bootstrap
re-computes the same quantities on resampled rows with vectorised numpy so that 1000
resamples of every model take about a second.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from geomusic_lib.data.geo import great_circle_km
from geomusic_lib.predict.predictions import Predictions, read_predictions

if TYPE_CHECKING:
    from geomusic_lib.core.params import EvaluateParams, Params

Decision = Literal["argmax", "distance"]

#: Headline metrics, in the order of the comparison table. Each gets `_ci_low`/`_ci_high`.
HEADLINE = [
    "accuracy",
    "top3_accuracy",
    "top5_accuracy",
    "balanced_accuracy",
    "macro_f1",
    "mean_km",
    "median_km",
    "region_accuracy",
    "continent_accuracy",
    "ece",
]
#: Metrics where lower is better (the rest: higher is better).
LOWER_IS_BETTER = {"mean_km", "median_km", "ece"}

_CLASS_COLUMNS = ["class", "lat", "lon", "region", "continent"]


# --------------------------------------------------------------------------- classes
def align_classes(pred: Predictions, classes_df: pd.DataFrame) -> pd.DataFrame:
    """`classes.csv` rows in the order of the predictions' probability columns."""
    missing_cols = [c for c in _CLASS_COLUMNS if c not in classes_df.columns]
    if missing_cols:
        raise ValueError(
            f"classes table lacks columns {missing_cols}; expected data/classes.csv with "
            f"columns {_CLASS_COLUMNS + ['n_tracks']}"
        )
    table = classes_df.assign(**{"class": classes_df["class"].astype(str)}).set_index("class")
    missing = [c for c in pred.classes if c not in table.index]
    if missing:
        raise ValueError(
            f"{len(missing)} predicted classes are not in classes.csv (first: {missing[:5]}). "
            "Were the predictions written for another run?"
        )
    return table.loc[list(pred.classes)].reset_index()


def predicted_classes(pred: Predictions, classes: pd.DataFrame, decision: Decision = "argmax") -> np.ndarray:
    """Class index per row: the most probable class, or the distance-aware choice."""
    if decision == "argmax":
        return pred.proba.argmax(axis=1)
    if decision == "distance":
        from geomusic_lib.predict.decision import distance_aware_predict

        return np.asarray(
            distance_aware_predict(pred.proba, classes["lat"].to_numpy(float), classes["lon"].to_numpy(float)),
            dtype=int,
        )
    raise ValueError(f"decision must be 'argmax' or 'distance', got {decision!r}")


def geographic_order(classes: pd.DataFrame) -> np.ndarray:
    """Class positions sorted by region (regions west to east), then by longitude.

    Regions are ordered by their mean longitude so that neighbouring regions sit next to
    each other in a confusion matrix and geographic clustering shows as blocks.
    """
    frame = classes.reset_index(drop=True).copy()
    frame["_pos"] = np.arange(len(frame))
    region_lon = frame.groupby("region", dropna=False)["lon"].transform("mean")
    frame["_region_lon"] = region_lon.fillna(np.inf)
    frame["_lon"] = frame["lon"].fillna(np.inf)
    frame = frame.sort_values(["_region_lon", "region", "_lon", "class"], kind="mergesort")
    return frame["_pos"].to_numpy()


# --------------------------------------------------------------------------- geography
def error_km(pred: Predictions, classes: pd.DataFrame, y_pred: np.ndarray) -> np.ndarray:
    """Great-circle distance (km) from the predicted class to the track's true place.

    The true place is the track's (or its station's) coordinates; where these are unknown
    (NaN) the true class's coordinates stand in. Rows with neither are NaN.
    """
    class_lat = classes["lat"].to_numpy(float)
    class_lon = classes["lon"].to_numpy(float)
    true_lat = np.where(np.isnan(pred.true_lat), class_lat[pred.y_true], pred.true_lat)
    true_lon = np.where(np.isnan(pred.true_lon), class_lon[pred.y_true], pred.true_lon)
    return np.asarray(great_circle_km(class_lat[y_pred], class_lon[y_pred], true_lat, true_lon), dtype=float)


# --------------------------------------------------------------------------- row-wise pieces
def top_k_hits(proba: np.ndarray, y_true: np.ndarray, k: int) -> np.ndarray:
    """Per-row top-k hit, with the same tie rule as `sklearn.metrics.top_k_accuracy_score`."""
    ranked = np.argsort(proba, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return (ranked == y_true[:, None]).any(axis=1)


def _ece_bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    return np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)


def expected_calibration_error(proba: np.ndarray, y_true: np.ndarray, n_bins: int = 10) -> float:
    """ECE on the top-1 probability: sum over equal-width bins of |accuracy - confidence| * share."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    bins = _ece_bins(confidence, n_bins)
    gap = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    return float(np.abs(gap).sum() / len(y_true))


def reliability_table(proba: np.ndarray, y_true: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per confidence bin: count, mean confidence and accuracy (for a reliability diagram)."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(float)
    bins = _ece_bins(confidence, n_bins)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        acc = np.bincount(bins, weights=correct, minlength=n_bins) / count
    edges = np.linspace(0, 1, n_bins + 1)
    return pd.DataFrame({
        "bin_low": edges[:-1], "bin_high": edges[1:], "count": count,
        "confidence": conf, "accuracy": acc,
    })


# --------------------------------------------------------------------------- bootstrap
def _resamples(n: int, n_boot: int, seed: int, max_cells: int = 4_000_000) -> Iterator[np.ndarray]:
    """Bootstrap row indices in chunks of shape (b, n), bounded to `max_cells` entries."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, max_cells // max(n, 1)))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        yield rng.integers(0, n, size=(b, n))
        done += b


def _per_class_counts(values: np.ndarray, idx: np.ndarray, n_classes: int, weights=None) -> np.ndarray:
    """(b, K) counts of class `values[idx]` per resample, optionally weighted."""
    b = idx.shape[0]
    codes = values[idx] + n_classes * np.arange(b)[:, None]
    w = None if weights is None else weights[idx].ravel()
    return np.bincount(codes.ravel(), weights=w, minlength=b * n_classes).reshape(b, n_classes)


def _bootstrap(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    rows: dict[str, np.ndarray],
    km: np.ndarray,
    confidence: np.ndarray,
    top1_correct: np.ndarray,
    n_classes: int,
    n_bins: int,
    n_boot: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Bootstrap distributions of every headline metric (one value per resample)."""
    out: dict[str, list[np.ndarray]] = {name: [] for name in HEADLINE}
    correct = (y_true == y_pred).astype(float)
    bins = _ece_bins(confidence, n_bins)
    ece_gap = top1_correct.astype(float) - confidence
    for idx in _resamples(len(y_true), n_boot, seed):
        for name, hits in rows.items():
            out[name].append(_share(hits[idx], axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            # all-NaN resamples (no coordinates at all) give NaN, silently
            sample_km = km[idx]
            if not np.isnan(km).any():
                mean_km, median_km = sample_km.mean(axis=1), np.median(sample_km, axis=1)
            else:
                has_km = ~np.isnan(sample_km).all(axis=1)
                mean_km = np.full(len(idx), np.nan)
                median_km = np.full(len(idx), np.nan)
                if has_km.any():
                    mean_km[has_km] = np.nanmean(sample_km[has_km], axis=1)
                    median_km[has_km] = np.nanmedian(sample_km[has_km], axis=1)
            out["mean_km"].append(mean_km)
            out["median_km"].append(median_km)
            n_true = _per_class_counts(y_true, idx, n_classes)
            n_pred = _per_class_counts(y_pred, idx, n_classes)
            tp = _per_class_counts(y_true, idx, n_classes, weights=correct)
            recall = np.where(n_true > 0, tp / n_true, np.nan)
            out["balanced_accuracy"].append(np.nanmean(recall, axis=1))
            denom = n_true + n_pred
            f1 = np.where(denom > 0, 2 * tp / denom, np.nan)
            out["macro_f1"].append(np.nanmean(f1, axis=1))
        gaps = _per_class_counts(bins, idx, n_bins, weights=ece_gap)
        out["ece"].append(np.abs(gaps).sum(axis=1) / len(y_true))
    return {name: np.concatenate(parts) for name, parts in out.items()}


# --------------------------------------------------------------------------- metrics
def _same_known(group: np.ndarray, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """1 where predicted and true class share a group, 0 where not, NaN where the true class has no
    known group ("" or nan). A level is scored only where it exists: when the classes fall into fewer
    than two known groups (provinces of one continent, labels with no region), every row is NaN."""
    known_groups = ~np.isin(group, ["", "nan", "None"])
    if len(set(group[known_groups])) < 2:
        return np.full(len(y_true), np.nan)
    same = (group[y_pred] == group[y_true]).astype(float)
    return np.where(known_groups[y_true], same, np.nan)


def _share(hits: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """The mean of 0/1 hits over the rows where they are defined (NaN where none is)."""
    hits = np.asarray(hits, dtype=float)
    defined = ~np.isnan(hits)
    total, count = np.where(defined, hits, 0.0).sum(axis=axis), defined.sum(axis=axis)
    return np.divide(total, count, out=np.full(np.shape(total), np.nan), where=count > 0)


def evaluate_predictions(
    pred: Predictions,
    classes_df: pd.DataFrame,
    decision: Decision = "argmax",
    bootstrap: int = 1000,
    seed: int = 42,
    calibration_bins: int = 10,
    ci: float = 0.95,
) -> dict[str, float]:
    """Headline metrics of one model, each with a percentile bootstrap CI (`_ci_low`, `_ci_high`).

    `decision` picks the predicted country (argmax or distance-aware); top-k and ECE always
    use the probabilities as they are. Region and continent accuracy compare the region
    (continent) of the predicted class with the true one, on the rows whose class has one; they are
    NaN where the labels have no such level (see `_same_known`). `bootstrap=0` skips the CIs.
    """
    n, n_classes = pred.proba.shape
    if n == 0:
        raise ValueError("no predictions to evaluate (the predictions file has no rows)")
    classes = align_classes(pred, classes_df)
    y_true = np.asarray(pred.y_true, dtype=int)
    y_pred = predicted_classes(pred, classes, decision)
    region = classes["region"].astype(str).to_numpy()
    continent = classes["continent"].astype(str).to_numpy()
    km = error_km(pred, classes, y_pred)
    rows = {
        "accuracy": y_pred == y_true,
        "top3_accuracy": top_k_hits(pred.proba, y_true, 3),
        "top5_accuracy": top_k_hits(pred.proba, y_true, 5),
        "region_accuracy": _same_known(region, y_pred, y_true),
        "continent_accuracy": _same_known(continent, y_pred, y_true),
    }

    point = _point_estimates(pred.proba, y_true, y_pred, rows, km, calibration_bins)
    result: dict[str, float] = {
        "n": int(n),
        "n_classes": int(n_classes),
        "n_true_coords": int((~np.isnan(pred.true_lat) & ~np.isnan(pred.true_lon)).sum()),
    }
    dist = (
        _bootstrap(
            y_true, y_pred, rows, km, pred.proba.max(axis=1), pred.proba.argmax(axis=1) == y_true,
            n_classes, calibration_bins, bootstrap, seed,
        )
        if bootstrap > 0 else {}
    )
    result.update(_with_intervals(point, dist, ci))
    return result


def _point_estimates(proba: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, rows: dict[str, np.ndarray],
                     km: np.ndarray, calibration_bins: int) -> dict[str, float]:
    """Each headline metric on all rows (scikit-learn where it has the metric)."""
    n_classes = proba.shape[1]

    def top_k(k: int) -> float:
        if k >= n_classes:  # sklearn warns and returns 1.0
            return 1.0
        if n_classes == 2:
            return float(rows[f"top{k}_accuracy"].mean())
        return float(top_k_accuracy_score(y_true, proba, k=k, labels=np.arange(n_classes)))

    with np.errstate(invalid="ignore"):
        has_km = not np.isnan(km).all()
        return {
            "accuracy": accuracy_score(y_true, y_pred),
            "top3_accuracy": top_k(3),
            "top5_accuracy": top_k(5),
            "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
            "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
            "mean_km": float(np.nanmean(km)) if has_km else np.nan,
            "median_km": float(np.nanmedian(km)) if has_km else np.nan,
            "region_accuracy": float(_share(rows["region_accuracy"])),
            "continent_accuracy": float(_share(rows["continent_accuracy"])),
            "ece": expected_calibration_error(proba, y_true, calibration_bins),
        }


def _with_intervals(point: dict[str, float], dist: dict[str, np.ndarray], ci: float) -> dict[str, float]:
    """`name`, `name_ci_low`, `name_ci_high` for every headline metric (NaN bounds without resamples)."""
    tail = (1 - ci) / 2 * 100
    out: dict[str, float] = {}
    for name in HEADLINE:
        out[name] = float(point[name])
        if name in dist and not np.isnan(dist[name]).all():
            low, high = np.nanpercentile(dist[name], [tail, 100 - tail])
        else:
            low = high = np.nan
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = float(low), float(high)
    return out


def per_class_metrics(pred: Predictions, classes_df: pd.DataFrame, decision: Decision = "argmax") -> pd.DataFrame:
    """One row per class: support, precision, recall, F1 and distance error (km) of its tracks."""
    classes = align_classes(pred, classes_df)
    y_true = np.asarray(pred.y_true, dtype=int)
    y_pred = predicted_classes(pred, classes, decision)
    labels = np.arange(len(classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    km = error_km(pred, classes, y_pred)
    km_by_class = pd.Series(km).groupby(y_true)
    frame = classes[_CLASS_COLUMNS].copy()
    frame["support"] = support
    frame["n_predicted"] = np.bincount(y_pred, minlength=len(classes))
    frame["precision"] = precision
    frame["recall"] = recall
    frame["f1"] = f1
    frame["mean_km"] = km_by_class.mean().reindex(labels).to_numpy()
    frame["median_km"] = km_by_class.median().reindex(labels).to_numpy()
    return frame


def ordered_confusion(pred: Predictions, classes_df: pd.DataFrame, decision: Decision = "argmax") -> pd.DataFrame:
    """Confusion counts (rows: true, columns: predicted) in geographic order."""
    classes = align_classes(pred, classes_df)
    order = geographic_order(classes)
    y_pred = predicted_classes(pred, classes, decision)
    counts = confusion_matrix(pred.y_true, y_pred, labels=order)
    names = classes["class"].to_numpy()[order]
    return pd.DataFrame(counts, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))
