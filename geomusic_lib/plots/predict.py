"""The figure of notebook 09: a model's top-k countries for a few tracks, one panel each.

Sizes are in pixels and the figure is exactly as wide as the book's column, so labels can be
kept out of neighbouring panels by arithmetic rather than by luck.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from geomusic_lib.plots.style import BOOK_WIDTH_PX, CHAR_PX as _CHAR_PX, colour as _colour

_MIN_PANEL_PX = 170  # narrowest plotting width of a panel: fewer columns rather than narrower bars
_LABEL_CHARS = 18  # country names wrap to lines of at most this many characters (at word breaks)
_LINE_PX = 16  # height of one line of 12 px text
_TICKS_PX = 26  # the probability ticks below a panel
_AXIS_TITLE_PX = 24  # "probability (0-1)" below the ticks
_HEAD_PX = 84  # the figure's title (pinned to the top) and the legend above the first row's titles


def _wrap(text: str, chars: int, max_lines: int) -> list[str]:
    """`text` wrapped to lines of at most `chars` characters, at most `max_lines` (the last cut with …)."""
    lines = textwrap.wrap(text, max(4, chars)) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(4, chars) - 1] + "…"
    return lines


@dataclass(frozen=True)
class _Grid:
    """Pixel geometry of the panels: columns, label column, panel width, rows and their heights."""

    cols: int
    rows: int
    label_px: int  # room left of each panel for its country names
    panel_px: float  # plotting width of one panel
    bars_px: int  # plotting height of one panel
    title_px: int  # room above each panel for its title

    @property
    def pitch_px(self) -> float:
        """Distance from one column's country names to the next column's: a panel title's room."""
        return self.panel_px + self.label_px


def _grid(n: int, cols: int, k: int, label_lines: list[list[str]], title_lines: int = 1) -> _Grid:
    """The most columns (up to `cols`) whose panels stay `_MIN_PANEL_PX` wide in the book's width."""
    label_px = math.ceil(_CHAR_PX * max((len(line) for lines in label_lines for line in lines), default=1)) + 12
    usable = BOOK_WIDTH_PX - 20 - label_px  # margins: the first column's names, 10 px right
    cols = max(1, min(cols, n))
    while cols > 1 and (usable - (cols - 1) * label_px) / cols < _MIN_PANEL_PX:
        cols -= 1
    slot = max(26, 14 * max((len(lines) for lines in label_lines), default=1) + 10)
    return _Grid(cols=cols, rows=max(1, math.ceil(n / cols)), label_px=label_px,
                 panel_px=(usable - (cols - 1) * label_px) / cols, bars_px=slot * max(k, 1),
                 title_px=_LINE_PX * title_lines + 8)


def _panel_title(truth: str, track: str, guesses: Sequence[str], chars: int) -> list[str]:
    """'true: <country>' (noting when it is not among the guesses), then the track id, cut to fit."""
    note = "" if truth in guesses else f" (not in the top {len(guesses)})"
    return _wrap(f"true: {truth}{note}", chars, 2) + _wrap(track, chars, 1)


def _add_panel(fig: go.Figure, ranked: list[str], proba: np.ndarray, truth: str, row: int, col: int,
               shown: set[str]) -> None:
    """Bars at positions 0..k-1 in rank order (rank 1 at the top); the true country keeps its place."""
    pos = np.arange(len(ranked))
    is_true = np.array([country == truth for country in ranked], dtype=bool)
    for flag, kind in ((False, "other guesses"), (True, "the true country")):
        if flag and not is_true.any():
            continue
        part = is_true == flag
        fig.add_trace(go.Bar(
            x=proba[part], y=pos[part], orientation="h", name=kind, legendgroup=kind, marker_color=_colour(int(flag)),
            showlegend=kind not in shown, customdata=np.column_stack([np.array(ranked)[part], pos[part] + 1]),
            hovertemplate="rank %{customdata[1]}: %{customdata[0]}<br>probability: %{x:.3f}<extra></extra>",
        ), row=row, col=col)
        shown.add(kind)
    labels = ["<br>".join(_wrap(c, _LABEL_CHARS, 3)) for c in ranked]
    fig.update_yaxes(tickmode="array", tickvals=pos.tolist(), ticktext=labels, range=[len(ranked) - 0.5, -0.5],
                     row=row, col=col)


def top_k_figure(
    result: pd.DataFrame,
    true_labels: Sequence[str],
    title: str = "Top predictions for held-out tracks",
    cols: int = 3,
) -> go.Figure:
    """A panel per track of `Predictor.predict`'s table: its top-k countries as bars in rank order
    (top1 at the top), the true country in its own colour, in its place, when it is among them.

    The figure is as wide as the book's column; it uses fewer than `cols` columns when long country
    names would leave the panels too narrow, and no label or title reaches a neighbouring panel.
    """
    if len(true_labels) != len(result):
        raise ValueError(f"got {len(true_labels)} true labels for {len(result)} predicted tracks")
    k = sum(1 for c in result.columns if str(c).startswith("top") and str(c)[3:].isdigit())
    n = len(result)
    ranked = [[str(result[f"top{j}"].iloc[i]) for j in range(1, k + 1)] for i in range(n)]
    ids = result["track_id"].astype(str).tolist() if "track_id" in result.columns else [str(i) for i in range(n)]
    grid = _grid(n, cols, k, [_wrap(c, _LABEL_CHARS, 3) for r in ranked for c in r])
    chars = int((grid.pitch_px - 16) // _CHAR_PX)  # a title may use its column's pitch, less a gap
    titles = [_panel_title(str(t), i, r, chars) for t, i, r in zip(true_labels, ids, ranked)]
    grid = replace(grid, title_px=_LINE_PX * max((len(t) for t in titles), default=1) + 8)
    gap_px = _TICKS_PX + grid.title_px
    plot_w = BOOK_WIDTH_PX - 20 - grid.label_px
    plot_h = grid.rows * grid.bars_px + (grid.rows - 1) * gap_px
    fig = make_subplots(rows=grid.rows, cols=grid.cols,
                        horizontal_spacing=grid.label_px / plot_w if grid.cols > 1 else 0.0,
                        vertical_spacing=gap_px / plot_h if grid.rows > 1 else 0.0)
    shown: set[str] = set()
    for i in range(n):
        r, c = i // grid.cols + 1, i % grid.cols + 1
        proba = np.array([float(result[f"p{j}"].iloc[i]) for j in range(1, k + 1)])
        _add_panel(fig, ranked[i], proba, str(true_labels[i]), r, c, shown)
        fig.update_xaxes(range=[0, 1], title_text="probability (0-1)" if i + grid.cols >= n else None, row=r, col=c)
    for i in range(n, grid.rows * grid.cols):  # the empty cells of the last row
        fig.update_xaxes(visible=False, row=i // grid.cols + 1, col=i % grid.cols + 1)
        fig.update_yaxes(visible=False, row=i // grid.cols + 1, col=i % grid.cols + 1)
    _add_titles(fig, titles, grid, plot_w, plot_h)
    top = _HEAD_PX + grid.title_px
    fig.update_layout(title={"text": title, "x": 0.01, "xanchor": "left", "y": 1, "yref": "container", "yanchor": "top",
                             "pad": {"t": 14}}, barmode="overlay",
                      width=BOOK_WIDTH_PX, height=plot_h + top + _TICKS_PX + _AXIS_TITLE_PX + 10,
                      margin={"l": grid.label_px + 10, "r": 10, "t": top, "b": _TICKS_PX + _AXIS_TITLE_PX + 10},
                      legend={"orientation": "h", "x": -grid.label_px / plot_w, "xanchor": "left",
                              "y": 1 + (grid.title_px + 4) / plot_h, "yanchor": "bottom"})
    return fig


def _add_titles(fig: go.Figure, titles: list[list[str]], grid: _Grid, plot_w: float, plot_h: float) -> None:
    """Each panel's title above it, starting where its country names start: it spans one column pitch."""
    for i, lines in enumerate(titles):
        axis = fig.layout[f"xaxis{'' if i == 0 else i + 1}"], fig.layout[f"yaxis{'' if i == 0 else i + 1}"]
        fig.add_annotation(text="<br>".join(lines), xref="paper", yref="paper", showarrow=False, align="left",
                           x=axis[0].domain[0] - grid.label_px / plot_w, xanchor="left",
                           y=axis[1].domain[1] + 4 / plot_h, yanchor="bottom", font={"size": 12})
