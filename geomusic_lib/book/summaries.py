"""Small tables the notebooks display: a model's headline metrics, and any table as the book shows it."""
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


def shown(frame: pd.DataFrame, digits: int = 3) -> "pd.io.formats.style.Styler":
    """A table as the book shows it: no index column, headers that wrap at word breaks
    (`balanced accuracy`, so wide tables fit the page), kilometre columns as whole numbers,
    other floats to `digits` decimals."""
    floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])]
    formats = {c: "{:,.0f}" if "km" in str(c) else f"{{:.{digits}f}}" for c in floats}
    return (frame.style.hide(axis="index").format(formats, na_rep="")
            .format_index(lambda name: str(name).replace("_", " "), axis="columns"))
