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
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = ["EPS", "log_loss", "balanced_log_loss", "balanced_error", "expected_km", "OBJECTIVES", "objective_losses", "apply_temperature", "fit_temperature", "fit_weights", "combine",
           "FittedEnsemble", "fit_ensemble", "weights_table", "MemberProbabilities", "ensemble_over_splits", "ensemble_summary"]

#: Probabilities are clipped to this before logs, so a zero probability (e.g. a class absent
#: from a baseline's training rows) costs a large but finite loss.
EPS = 1e-7

#: a loss of probabilities `(n, K)` against true classes `(n,)`: lower is better
Loss = Callable[[np.ndarray, np.ndarray], float]


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


def balanced_log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    """The log-loss of each class's rows, averaged over the classes present (every class counts alike)."""
    proba = _check(proba, y)
    y = np.asarray(y, dtype=int)
    nll = -np.log(np.clip(proba[np.arange(len(y)), y], EPS, 1.0))
    return float(np.mean([nll[y == c].mean() for c in np.unique(y)]))


def balanced_error(proba: np.ndarray, y: np.ndarray) -> float:
    """1 - balanced accuracy (the mean of the recalls of the classes present)."""
    proba = _check(proba, y)
    y = np.asarray(y, dtype=int)
    hit = proba.argmax(axis=1) == y
    return float(1.0 - np.mean([hit[y == c].mean() for c in np.unique(y)]))


def expected_km(class_km: np.ndarray) -> Callable[[np.ndarray, np.ndarray], float]:
    """The mean expected great-circle error, Σ_j p_j · km(true, j), under `class_km` (K × K, NaN = 0)."""
    km = np.nan_to_num(np.asarray(class_km, dtype=float))
    return lambda proba, y: float((_check(proba, y) * km[np.asarray(y, dtype=int)]).sum(axis=1).mean())


#: what an ensemble can minimise (`evaluate.ensemble_objective`), and the loss its temperatures minimise
OBJECTIVES = ("log_loss", "balanced_log_loss", "balanced_accuracy", "expected_km")


def objective_losses(name: str, class_km: np.ndarray | None = None) -> tuple[Loss, Loss]:
    """(selection loss, calibration loss) of an objective; accuracy has no gradient in the temperature,
    so balanced accuracy calibrates on the balanced log-loss."""
    if name == "log_loss":
        return log_loss, log_loss
    if name == "balanced_log_loss":
        return balanced_log_loss, balanced_log_loss
    if name == "balanced_accuracy":
        return balanced_error, balanced_log_loss
    if name == "expected_km":
        if class_km is None:
            raise ValueError("the expected_km objective needs the classes' coordinates (class_km)")
        km = expected_km(class_km)
        return km, km
    raise ValueError(f"evaluate.ensemble_objective: unknown objective {name!r}; choose one of {OBJECTIVES}")


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): T > 1 flattens, T < 1 sharpens; the arg-max never changes."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = np.log(np.clip(_check(proba), EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, y: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0),
                    loss: Loss | None = None) -> float:
    """The temperature that minimises `loss` (the log-loss by default) of `apply_temperature(proba, T)`."""
    proba = _check(proba, y)
    loss = loss or log_loss
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(lambda t: loss(apply_temperature(proba, float(np.exp(t))), y),
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


def fit_weights(probas: Sequence[np.ndarray], y: np.ndarray, steps: int = 25, loss: Loss | None = None) -> np.ndarray:
    """Greedy forward selection with replacement (Caruana et al. 2004) on `loss` (default the log-loss).

    Starts from the single best member and adds, `steps` times, the member whose inclusion
    lowers the loss of the running mean most (stopping early when none does). Returns
    weights that sum to 1; members never picked get 0. Few parameters, so little over-fitting
    on a small validation split.
    """
    probas = [_check(p, y) for p in probas]
    loss = loss or log_loss
    counts = np.zeros(len(probas))
    total = np.zeros_like(probas[0])
    best = np.inf
    for _ in range(max(1, steps)):
        losses = [loss((total + p) / (counts.sum() + 1), y) for p in probas]
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
    objective: str = "log_loss"
    score: float = float("nan")  # the objective on the rows it was fitted on (lower is better)
    member_scores: dict[str, float] = field(default_factory=dict)
    fallback: str | None = None  # the member it became, when mixing would score worse than that member

    def predict(self, probas: Mapping[str, np.ndarray]) -> np.ndarray:
        """Calibrated ensemble probabilities from each member's probabilities (same rows, same classes)."""
        missing = [m for m in self.members if m not in probas]
        if missing:
            raise KeyError(f"probabilities missing for ensemble member(s) {missing}")
        used = [(m, t, w) for m, t, w in zip(self.members, self.temperatures, self.weights) if w > 0]
        mixed = combine([apply_temperature(probas[m], t) for m, t, _ in used], [w for *_, w in used])
        return apply_temperature(mixed, self.temperature)

    def describe(self) -> str:
        if self.fallback:
            return f"{self.fallback} alone (a mixture scored worse on the {self.objective.replace('_', ' ')})"
        parts = [f"{m} {w:.2f}" for m, w in zip(self.members, self.weights) if w > 0]
        return ", ".join(parts) + f"; T={self.temperature:.2f}"


def fit_ensemble(val_probas: Mapping[str, np.ndarray], y_val: np.ndarray, steps: int = 25,
                 calibrate_members: bool = True, objective: str = "log_loss",
                 class_km: np.ndarray | None = None) -> FittedEnsemble:
    """Fit an ensemble on held-out rows: temperature-scale each member, choose weights by greedy
    selection on `objective` (see `OBJECTIVES`), then temperature-scale the mixture. It is never worse
    than its best member on those rows: if mixing would be, it becomes that member (`fallback`)."""
    members = list(val_probas)
    if not members:
        raise ValueError("fit_ensemble needs at least one member")
    y_val = np.asarray(y_val, dtype=int)
    select, calibrate = objective_losses(objective, class_km)
    temps = [fit_temperature(val_probas[m], y_val, loss=calibrate) if calibrate_members else 1.0 for m in members]
    scaled = [apply_temperature(val_probas[m], t) for m, t in zip(members, temps)]
    member_scores = {m: select(p, y_val) for m, p in zip(members, scaled)}
    weights = fit_weights(scaled, y_val, steps, loss=select)
    single = int(np.count_nonzero(weights)) == 1  # one member, already calibrated: no final temperature
    final = 1.0 if single else fit_temperature(combine(scaled, weights), y_val, loss=calibrate)
    mixed = apply_temperature(combine(scaled, weights), final)
    best = min(member_scores, key=member_scores.get)
    fallback = None
    if select(mixed, y_val) > member_scores[best] + 1e-9 * max(1.0, abs(member_scores[best])):
        weights, final, fallback = np.eye(len(members))[members.index(best)], 1.0, best
        mixed = scaled[members.index(best)]
    return FittedEnsemble(members, temps, weights.tolist(), final, log_loss(mixed, y_val), objective=objective,
                          score=select(mixed, y_val), member_scores=member_scores, fallback=fallback)


# ---------------------------------------------------------------------------- over a run's splits
@dataclass
class MemberProbabilities:
    """One member's probabilities on one split: validation rows (to fit) and test rows (to score)."""

    val: np.ndarray
    test: np.ndarray


def ensemble_over_splits(members: Sequence[Mapping[str, MemberProbabilities]], y_val: Sequence[np.ndarray],
                         notes: Sequence[dict], objective: str = "log_loss",
                         class_km: np.ndarray | None = None) -> tuple[list[FittedEnsemble], list[np.ndarray]]:
    """Fit one ensemble per split on its validation rows and apply it to its test rows
    (`notes`: per split, e.g. its fold and name). Returns the ensembles and each split's test probabilities."""
    fitted, test = [], []
    for probas, y, note in zip(members, y_val, notes):
        ens = fit_ensemble({m: p.val for m, p in probas.items()}, y, objective=objective, class_km=class_km)
        ens.notes = dict(note)
        fitted.append(ens)
        test.append(ens.predict({m: p.test for m, p in probas.items()}))
    return fitted, test


def ensemble_summary(fitted: Sequence[FittedEnsemble]) -> list[dict]:
    """What `ensemble.json` records per split: members, temperatures, weights, validation log-loss."""
    return [{"fold": e.notes.get("fold"), "members": e.members, "member_temperatures": e.temperatures,
             "weights": e.weights, "temperature": e.temperature, "val_log_loss": e.val_log_loss,
             "objective": e.objective, "score": e.score, "member_scores": e.member_scores, "fallback": e.fallback}
            for e in fitted]


def weights_table(fitted: Sequence[FittedEnsemble]) -> "pd.DataFrame":
    """One row per member and split: its weight, temperature and score on the held-out rows the
    ensemble was fitted on, then the ensemble's own row (lower scores are better)."""
    import pandas as pd

    rows = []
    for ens in fitted:
        split = ens.notes.get("split", ens.notes.get("fold", ""))
        for m, w, t in zip(ens.members, ens.weights, ens.temperatures):
            rows.append({"split": split, "member": m, "weight": round(w, 3), "temperature": round(t, 2),
                         ens.objective: round(ens.member_scores.get(m, float("nan")), 4)})
        rows.append({"split": split, "member": "ensemble" + (f" (= {ens.fallback})" if ens.fallback else ""),
                     "weight": 1.0, "temperature": round(ens.temperature, 2), ens.objective: round(ens.score, 4)})
    return pd.DataFrame(rows)
