"""The figure of notebook 09: a model's top-k countries for a few tracks, one panel each."""
from __future__ import annotations

import math
import textwrap
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from geomusic_lib.plots_style import CHAR_PX as _CHAR_PX
from geomusic_lib.plots_style import colour as _colour

_PANEL_PX = 220  # plotting width of one panel


def _panel_title(text: str, width_px: float, max_lines: int = 2) -> list[str]:
    """`text` wrapped to lines that fit `width_px`, at most `max_lines` (the last one cut with …)."""
    chars = max(8, int(width_px // _CHAR_PX))
    lines = textwrap.wrap(text, chars) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: chars - 1] + "…"
    return lines


def top_k_figure(
    result: pd.DataFrame,
    true_labels: Sequence[str],
    title: str = "Top predictions for held-out tracks",
    cols: int = 3,
) -> go.Figure:
    """A panel per track of `Predictor.predict`'s table: its top-k countries as bars in rank order
    (top1 at the top), the true country in its own colour when it is among them.

    Panels are spaced in pixels so that country names and panel titles never reach a neighbour.
    """
    if len(true_labels) != len(result):
        raise ValueError(f"got {len(true_labels)} true labels for {len(result)} predicted tracks")
    k = sum(1 for c in result.columns if str(c).startswith("top") and str(c)[3:].isdigit())
    n, cols = len(result), max(1, min(cols, len(result)))
    rows = max(1, math.ceil(n / cols))  # an empty table gives one empty panel
    ranked = [[str(result[f"top{j}"].iloc[i]) for j in range(1, k + 1)] for i in range(n)]
    label_px = math.ceil(_CHAR_PX * max((len(c) for r in ranked for c in r), default=1)) + 12
    ids = result["track_id"].astype(str) if "track_id" in result.columns else pd.Series(range(n)).astype(str)
    titles = [_panel_title(f"{t} · {i}", _PANEL_PX + label_px - 12) for t, i in zip(true_labels, ids)]
    lines = max(len(t) for t in titles) if titles else 1
    row_px, gap_px = 30 * k + 20, 18 * lines + 36
    plot_w, plot_h = cols * _PANEL_PX + (cols - 1) * label_px, rows * row_px + (rows - 1) * gap_px
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=["<br>".join(t) for t in titles],
                        horizontal_spacing=label_px / plot_w if cols > 1 else 0.0,
                        vertical_spacing=gap_px / plot_h if rows > 1 else 0.0)
    shown: set[bool] = set()
    for i in range(n):
        r, c = i // cols + 1, i % cols + 1
        is_true = np.array([country == str(true_labels[i]) for country in ranked[i]])
        proba = np.array([float(result[f"p{j}"].iloc[i]) for j in range(1, k + 1)])
        for flag, kind in ((False, "other guesses"), (True, "the true country")):
            if is_true.any() or not flag:
                fig.add_trace(go.Bar(x=proba[is_true == flag], y=np.array(ranked[i])[is_true == flag], orientation="h",
                                     name=kind, legendgroup=kind, marker_color=_colour(int(flag)),
                                     showlegend=flag not in shown, hovertemplate="%{y}<br>probability: %{x:.3f}<extra></extra>"),
                              row=r, col=c)
                shown.add(flag)
        fig.update_yaxes(categoryorder="array", categoryarray=ranked[i], autorange="reversed", row=r, col=c)
        fig.update_xaxes(range=[0, 1], title_text="probability (0-1)" if i + cols >= n else None, row=r, col=c)
    for i in range(n, rows * cols):  # the empty cells of the last row
        fig.update_xaxes(visible=False, row=i // cols + 1, col=i % cols + 1)
        fig.update_yaxes(visible=False, row=i // cols + 1, col=i % cols + 1)
    fig.update_annotations(font_size=12)
    top = 90 + 18 * lines  # the figure's title and the first row's panel titles
    fig.update_layout(title=title, barmode="overlay", width=plot_w + label_px + 200, height=plot_h + top + 60,
                      margin={"l": label_px + 20, "r": 180, "t": top, "b": 60})
    return fig
