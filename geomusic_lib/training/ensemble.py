"""Calibrated probability ensembles: temperature scaling and weighted averaging of members'
class probabilities, both fitted on *validation* rows only (never on the rows they score).

Calibration matters for the distance-aware decision (`geomusic_lib.predict.decision`): it minimises the
expected great-circle distance under the probabilities, so over-confident probabilities make it
an arg-max and flat ones make it hedge towards the middle of the map.

    ens = fit_ensemble({"fcnn": p_val_fcnn, "logreg": p_val_logreg}, y_val)
    p_test = ens.predict({"fcnn": p_test_fcnn, "logreg": p_test_logreg})
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = ["EPS", "log_loss", "apply_temperature", "fit_temperature", "fit_weights", "combine",
           "FittedEnsemble", "fit_ensemble", "MemberProbabilities", "ensemble_over_splits", "ensemble_summary"]

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


# ---------------------------------------------------------------------------- over a run's splits
@dataclass
class MemberProbabilities:
    """One member's probabilities on one split: validation rows (to fit) and test rows (to score)."""

    val: np.ndarray
    test: np.ndarray


def ensemble_over_splits(members: Sequence[Mapping[str, MemberProbabilities]], y_val: Sequence[np.ndarray],
                         notes: Sequence[dict]) -> tuple[list[FittedEnsemble], list[np.ndarray]]:
    """Fit one ensemble per split on its validation rows and apply it to its test rows
    (`notes`: per split, e.g. its fold and name). Returns the ensembles and each split's test probabilities."""
    fitted, test = [], []
    for probas, y, note in zip(members, y_val, notes):
        ens = fit_ensemble({m: p.val for m, p in probas.items()}, y)
        ens.notes = dict(note)
        fitted.append(ens)
        test.append(ens.predict({m: p.test for m, p in probas.items()}))
    return fitted, test


def ensemble_summary(fitted: Sequence[FittedEnsemble]) -> list[dict]:
    """What `ensemble.json` records per split: members, temperatures, weights, validation log-loss."""
    return [{"fold": e.notes.get("fold"), "members": e.members, "member_temperatures": e.temperatures,
             "weights": e.weights, "temperature": e.temperature, "val_log_loss": e.val_log_loss} for e in fitted]
