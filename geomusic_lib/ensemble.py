"""Calibrated probability ensembles: temperature scaling and weighted averaging of members'
class probabilities, both fitted on *validation* rows only (never on the rows they score).

Calibration matters for the distance-aware decision (`geomusic_lib.decision`): it minimises the
expected great-circle distance under the probabilities, so over-confident probabilities make it
an arg-max and flat ones make it hedge towards the middle of the map.

    ens = fit_ensemble({"fcnn": p_val_fcnn, "logreg": p_val_logreg}, y_val)
    p_test = ens.predict({"fcnn": p_test_fcnn, "logreg": p_test_logreg})
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

__all__ = ["EPS", "log_loss", "apply_temperature", "fit_temperature", "fit_weights", "combine",
           "FittedEnsemble", "fit_ensemble", "run_ensemble", "ensemble_stage"]

#: Probabilities are clipped to this before logs, so a zero probability (e.g. a class absent
#: from a baseline's training rows) costs a large but finite loss.
EPS = 1e-7


def _check(proba: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[0] == 0:
        raise ValueError(f"proba must be a non-empty (n, K) array, got shape {proba.shape}")
    if y is not None and len(y) != len(proba):
        raise ValueError(f"{len(proba)} probability rows but {len(y)} labels")
    return proba


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-probability of the true class."""
    proba = _check(proba, y)
    y = np.asarray(y, dtype=int)
    return float(-np.log(np.clip(proba[np.arange(len(y)), y], EPS, 1.0)).mean())


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): T > 1 flattens, T < 1 sharpens; the arg-max never changes."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = np.log(np.clip(_check(proba), EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature that minimises the log-loss of `apply_temperature(proba, T)` on (proba, y)."""
    proba = _check(proba, y)
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(lambda t: log_loss(apply_temperature(proba, float(np.exp(t))), y),
                          bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
    return float(np.exp(res.x))


def combine(probas: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted mean of probability matrices (weights are normalised to sum to 1)."""
    if len(probas) != len(weights) or not len(probas):
        raise ValueError(f"need one weight per member, got {len(probas)} members and {len(weights)} weights")
    w = np.asarray(weights, dtype=float)
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {w.tolist()}")
    w = w / w.sum()
    return sum(wi * _check(p) for wi, p in zip(w, probas))


def fit_weights(probas: Sequence[np.ndarray], y: np.ndarray, steps: int = 25) -> np.ndarray:
    """Greedy forward selection with replacement (Caruana et al. 2004) on the log-loss.

    Starts from the single best member and adds, `steps` times, the member whose inclusion
    lowers the log-loss of the running mean most (stopping early when none does). Returns
    weights that sum to 1; members never picked get 0. Few parameters, so little over-fitting
    on a small validation split.
    """
    probas = [_check(p, y) for p in probas]
    counts = np.zeros(len(probas))
    total = np.zeros_like(probas[0])
    best = np.inf
    for _ in range(max(1, steps)):
        losses = [log_loss((total + p) / (counts.sum() + 1), y) for p in probas]
        j = int(np.argmin(losses))
        if losses[j] >= best - 1e-9 and counts.sum() > 0:
            break
        best = losses[j]
        counts[j] += 1
        total += probas[j]
    return counts / counts.sum()


@dataclass
class FittedEnsemble:
    """Per-member temperatures, member weights and a final temperature, applied in that order."""

    members: list[str]
    temperatures: list[float]
    weights: list[float]
    temperature: float = 1.0
    val_log_loss: float = float("nan")
    notes: dict = field(default_factory=dict)

    def predict(self, probas: Mapping[str, np.ndarray]) -> np.ndarray:
        """Calibrated ensemble probabilities from each member's probabilities (same rows, same classes)."""
        missing = [m for m in self.members if m not in probas]
        if missing:
            raise KeyError(f"probabilities missing for ensemble member(s) {missing}")
        used = [(m, t, w) for m, t, w in zip(self.members, self.temperatures, self.weights) if w > 0]
        mixed = combine([apply_temperature(probas[m], t) for m, t, _ in used], [w for *_, w in used])
        return apply_temperature(mixed, self.temperature)

    def describe(self) -> str:
        parts = [f"{m} {w:.2f}" for m, w in zip(self.members, self.weights) if w > 0]
        return ", ".join(parts) + f"; T={self.temperature:.2f}"


def fit_ensemble(val_probas: Mapping[str, np.ndarray], y_val: np.ndarray, steps: int = 25,
                 calibrate_members: bool = True) -> FittedEnsemble:
    """Fit an ensemble on validation rows: temperature-scale each member, choose weights by
    greedy selection on the log-loss, then temperature-scale the mixture."""
    members = list(val_probas)
    if not members:
        raise ValueError("fit_ensemble needs at least one member")
    y_val = np.asarray(y_val, dtype=int)
    temps = [fit_temperature(val_probas[m], y_val) if calibrate_members else 1.0 for m in members]
    scaled = [apply_temperature(val_probas[m], t) for m, t in zip(members, temps)]
    weights = fit_weights(scaled, y_val, steps)
    mixed = combine(scaled, weights)
    final = fit_temperature(mixed, y_val)
    return FittedEnsemble(members, temps, weights.tolist(), final,
                          log_loss(apply_temperature(mixed, final), y_val))


# ---------------------------------------------------------------------------- a run's ensemble
def _network_predictors(name: str, table, splits, params, run_dir: Path) -> dict[int, object]:
    """Each split's early-stopped `Predictor` of network `name`, checked against the run: same
    classes, and trained on exactly this split, features and settings (else its validation rows
    may have been training rows)."""
    from geomusic_lib.evaluate import checkpoint_path
    from geomusic_lib.models.checkpoint import load_checkpoint
    from geomusic_lib.predict import Predictor
    from geomusic_lib.train import fingerprint

    predictors = {}
    for split in splits:
        path = checkpoint_path(run_dir, name, split.fold)
        checkpoint = load_checkpoint(path, map_location="cpu")
        expected = fingerprint(name, params.for_model(name), split, checkpoint.get("feature_names", []))
        if checkpoint.get("fingerprint") != expected:
            raise ValueError(f"{path}: trained with other settings, splits or features than this run's params; "
                             f"retrain {name} (its notebook) before fitting the ensemble")
        predictor = Predictor.from_dict(checkpoint, device="cpu", source=str(path))
        if predictor.classes != table.classes():
            raise ValueError(f"{path}: the checkpoint's classes differ from the run's; retrain {name}")
        predictors[split.fold] = predictor
    return predictors


def _validation_proba(name: str, table, y: np.ndarray, split, predictors: dict | None, seed: int,
                      frames: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Member `name`'s probabilities on the split's validation rows: a network's early-stopped
    checkpoint (on the run's frames for a frames model), or a baseline refitted on the training
    rows only (its own fit also saw them)."""
    from geomusic_lib.baselines import baseline_proba, fit_baseline

    if predictors is not None:
        predictor = predictors[split.fold]
        if predictor.view == "frames":
            return predictor.predict_proba([frames[i] for i in split.val])
        return predictor.predict_proba(table.frame.iloc[split.val])
    estimator = fit_baseline(name, seed + max(split.fold, 0), table.features[split.train], y[split.train])
    return baseline_proba(estimator, table.features[split.val], len(table.classes()))


def _test_proba(name: str, pred, table, split) -> np.ndarray:
    """Rows of a member's stored test predictions, in the order of `split.test`."""
    if list(pred.classes) != table.classes():
        raise ValueError(f"{name}: its stored predictions have other classes than the run; rerun {name}")
    here = pred.fold == split.fold
    position = {tid: i for i, tid in enumerate(pred.track_ids[here])}
    wanted = table.frame["track_id"].iloc[split.test]
    missing = [t for t in wanted if t not in position]
    if missing:
        raise ValueError(f"{name}: {len(missing)} test tracks of fold {split.fold} have no stored prediction "
                         f"(e.g. {missing[0]}); rerun {name}")
    return pred.proba[here][[position[t] for t in wanted]]


def run_ensemble(run_dir: str | Path, data, params, members: Sequence[str] | None = None,
                 name: str = "ensemble") -> list[FittedEnsemble]:
    """Fit a calibrated ensemble of the run's networks and baselines on each split's validation
    rows and write its test predictions to `models/<name>/predictions.parquet` (plus the fitted
    weights and temperatures in `models/<name>/ensemble.json`), so `evaluate_run` scores it.

    `members` defaults to the networks and baselines of `params.models` and `params.baselines`
    that have stored predictions, except the majority baseline. Networks that read frame
    sequences are scored on the run's frames (`<run>/features/frames`). The baselines' weights
    are fitted on a refit on the training rows only, then applied to their stored test
    probabilities (fitted on training and validation rows). Returns one `FittedEnsemble` per split.
    """
    import json

    from geomusic_lib.baselines import BASELINES
    from geomusic_lib.evaluate import prediction_files
    from geomusic_lib.features import frames_for_tracks
    from geomusic_lib.results import read_predictions, write_predictions

    run_dir = Path(run_dir)
    files = prediction_files(run_dir)
    if members is None:
        members = [m for m in (*params.models, *params.baselines) if m in files and m != "majority"]
    members = list(members)
    unknown = [m for m in members if m not in files or m == name]
    if unknown:
        raise FileNotFoundError(f"{run_dir / 'models'}: no predictions.parquet for ensemble member(s) {unknown}; "
                                f"train them first or choose from {sorted(set(files) - {name})}")
    if any(len(s.val) == 0 for s in data.splits):
        raise ValueError("the ensemble is fitted on validation rows, but a split has none (split.val is 0)")
    if not members:
        raise ValueError(f"no ensemble members: {run_dir / 'models'} holds no predictions besides the majority baseline")
    predictors = {m: _network_predictors(m, data.table, data.splits, params, run_dir)
                  for m in members if m not in BASELINES}
    frames = None
    if any(p.view == "frames" for fold in predictors.values() for p in fold.values()):
        frames = frames_for_tracks(data.table.frame["track_id"], run_dir / "features")
        if frames is None:
            raise FileNotFoundError(f"{run_dir / 'features'}: no frames for the frames-view network(s); "
                                    "rerun the feature stage (02) of this run")
    stored = {m: read_predictions(files[m]) for m in members}
    y = data.table.label_indices()
    fitted, probas, parts = [], [], []
    for split in data.splits:
        val = {m: _validation_proba(m, data.table, y, split, predictors.get(m), params.seed, frames) for m in members}
        ens = fit_ensemble(val, y[split.val])
        ens.notes = {"fold": split.fold, "split": split.name}
        fitted.append(ens)
        probas.append(ens.predict({m: _test_proba(m, stored[m], data.table, split) for m in members}))
        parts.append(data.table.frame.iloc[split.test][["track_id", "label", "lat", "lon"]].assign(fold=split.fold))
    out_dir = run_dir / "models" / name
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = [{"fold": e.notes["fold"], "members": e.members, "member_temperatures": e.temperatures,
                "weights": e.weights, "temperature": e.temperature, "val_log_loss": e.val_log_loss}
               for e in fitted]
    (out_dir / "ensemble.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")  # marks the kind
    rows = pd.concat(parts, ignore_index=True)
    write_predictions(out_dir / "predictions.parquet", rows["track_id"], rows["label"], np.concatenate(probas),
                      data.table.classes(), rows["lat"], rows["lon"], rows["fold"])
    return fitted


def ensemble_stage(run_dir: str | Path, data, params, name: str = "ensemble") -> list[FittedEnsemble]:
    """Notebook 07: fit the run's ensemble when `evaluate.ensemble` is on and every split has
    validation rows; otherwise remove a stale one (so it is not scored) and say why."""
    import shutil

    out_dir = Path(run_dir) / "models" / name
    why_not = ("evaluate.ensemble is false" if not params.evaluate.ensemble else
               "a split has no validation rows (split.val: 0)" if any(len(s.val) == 0 for s in data.splits) else None)
    if why_not:
        shutil.rmtree(out_dir, ignore_errors=True)
        print(f"no ensemble: {why_not}")
        return []
    fitted = run_ensemble(run_dir, data, params, name=name)
    for ens in fitted:
        print(f"{ens.notes['split']}: {ens.describe()}   (validation log-loss {ens.val_log_loss:.3f})")
    return fitted
