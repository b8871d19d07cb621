"""Small tables the notebooks display: a model's headline metrics, and the tracks 09 shows."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

NOTEBOOK_HEADLINE = ("accuracy", "top3_accuracy", "top5_accuracy", "macro_f1", "mean_km", "median_km")


def headline_table(metrics: dict, names: Sequence[str] = NOTEBOOK_HEADLINE) -> pd.DataFrame:
    """The estimate and interval bounds of a few metrics from `evaluate_predictions`, a column each
    (kilometres rounded to whole numbers, the rest to three decimals)."""
    table = pd.DataFrame({m: [metrics[m], metrics[f"{m}_ci_low"], metrics[f"{m}_ci_high"]] for m in names},
                         index=["estimate", "CI low", "CI high"])
    return table.round({m: 0 if m.endswith("_km") else 3 for m in names})


def showcase_tracks(tracks: pd.DataFrame, wanted: list[str], per_class: int, ranked: list[str]) -> pd.DataFrame:
    """Up to `per_class` rows of each wanted class present in `tracks`; when none is present
    (e.g. region labels), the first `len(wanted)` present classes of `ranked` instead."""
    present = set(tracks["label"])
    chosen = [c for c in wanted if c in present] or [c for c in ranked if c in present][: max(1, len(wanted))]
    rows = tracks[tracks["label"].isin(chosen)]
    return rows.groupby("label", sort=False).head(per_class).sort_values("label", key=lambda s: s.map(chosen.index))
