"""Which countries 08 and 09 show: chosen on validation rows (the test rows play no part), with a
minimum number of validation tracks, unless the params pin them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from geomusic_lib.evaluation.interpret import distinctive_classes
from geomusic_lib.predict.predictor import Predictor


@dataclass
class Showcase:
    """The chosen classes, how they were chosen (one sentence), and the validation table behind it."""

    classes: list[str]
    how: str
    validation: pd.DataFrame = field(default_factory=pd.DataFrame)


def validation_recall(predictor: Predictor, rows: pd.DataFrame, features_dir: str | Path) -> pd.DataFrame:
    """Per class: validation tracks (`support`) and the share the predictor gets right (`recall`)."""
    columns = ["class", "support", "recall"]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    proba = predictor.predict_proba(predictor.track_inputs(rows, features_dir))
    guess = np.asarray(predictor.classes, dtype=object)[proba.argmax(axis=1)]
    truth = rows["label"].astype(str).to_numpy()
    frame = pd.DataFrame({"class": truth, "right": guess == truth})
    table = frame.groupby("class", sort=True)["right"].agg(support="size", recall="mean").reset_index()
    return table[columns]


def choose_showcase(validation: pd.DataFrame, n: int, min_support: int, pinned: Sequence[str] = (),
                    present: Sequence[str] | None = None) -> Showcase:
    """The `n` classes with the highest validation recall among those with at least `min_support`
    validation tracks (ties: more tracks first); `pinned` classes (from the params) win when given."""
    present_set = set(present) if present is not None else None
    if pinned:
        chosen = [c for c in pinned if present_set is None or c in present_set]
        return Showcase(chosen, f"pinned in the params file ({', '.join(pinned)})", validation)
    eligible = validation[validation["support"] >= min_support]
    rule = f"at least {min_support} validation tracks"
    if eligible.empty:
        eligible, rule = validation, "any number of validation tracks (no class has enough for the minimum)"
    if present_set is not None:
        eligible = eligible[eligible["class"].isin(present_set)]
    ranked = distinctive_classes(eligible, n)
    how = (f"the {len(ranked)} classes the model gets right most often on the {int(validation['support'].sum())} "
           f"validation tracks, among classes with {rule}")
    return Showcase(ranked, how, validation)


def showcase_rows(tracks: pd.DataFrame, classes: Sequence[str], per_class: int) -> pd.DataFrame:
    """Up to `per_class` rows of each class, in the order of `classes`."""
    order = {c: i for i, c in enumerate(classes)}
    rows = tracks[tracks["label"].isin(order)]
    return rows.groupby("label", sort=False).head(per_class).sort_values("label", key=lambda s: s.map(order),
                                                                         kind="mergesort")


def prediction_findings(result: pd.DataFrame, truth: Sequence[str], showcase: Showcase, model: str) -> str:
    """The end of 09: how the countries were chosen and how many shown test tracks the model got right."""
    truth = np.asarray(truth, dtype=object)
    if len(result) == 0:
        return f"- No test track of the chosen classes to show ({showcase.how})."
    tops = result[[c for c in result.columns if c.startswith("top")]].to_numpy(dtype=object)
    first = int((tops[:, 0] == truth).sum())
    anywhere = int((tops == truth[:, None]).any(axis=1).sum())
    wrong = sorted({t for t, p in zip(truth, tops[:, 0]) if t != p})
    lines = [f"- Shown: {', '.join(showcase.classes)}: {showcase.how}.",
             f"- {model} puts the true class first for {first} of {len(result)} of these test tracks, and among its "
             f"top {tops.shape[1]} for {anywhere}."]
    if wrong:
        lines.append(f"- Missed at least once: {', '.join(wrong)}. The chosen classes are its strongest on "
                     "validation, so this is a favourable sample, not an estimate: the test scores are in "
                     "[07](07_evaluation.ipynb).")
    return "\n".join(lines)


def compact_guesses(result: pd.DataFrame, truth: Sequence[str]) -> pd.DataFrame:
    """`Predictor.predict`'s table in four readable columns: the true class, the guesses in rank
    order with their probabilities, the first guess's region and the distance-aware choice."""
    k = sum(c.startswith("top") for c in result.columns)
    guesses = [" · ".join(f"{row[f'top{j}']} {row[f'p{j}']:.2f}" for j in range(1, k + 1))
               for _, row in result.iterrows()]
    table = pd.DataFrame({"true": list(truth), "guesses (probability)": guesses,
                          "region": result["region"].to_numpy(), "distance-aware": result["distance_aware"].to_numpy()})
    if "track_id" in result:
        table.insert(0, "track", result["track_id"].astype(str).to_numpy())
    return table
