"""What every figure module shares: the book's content width, the colour cycle, a labelled heatmap."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

#: Width (px) of the book's content column: a figure wider than this is cut off or scrolls.
BOOK_WIDTH_PX = 800
#: Width of one character of a 12 px label, generously: layout sizes are in pixels.
CHAR_PX = 7.5
_COLOURS = qualitative.Plotly + qualitative.D3


def colour(i: int) -> str:
    """The i-th colour of the cycle every line and bar figure uses."""
    return _COLOURS[i % len(_COLOURS)]


def colour_bar(title: str) -> dict:
    """A colour bar whose title runs along the bar: it takes no width, so the page never clips it."""
    return {"title": {"text": title, "side": "right"}, "thickness": 16}


def frame_heatmap(frame: pd.DataFrame, title: str, x_title: str, y_title: str, colour_title: str, hover: str,
                   colorscale: str = "Viridis", **heatmap) -> go.Figure:
    """A heatmap of `frame` (its index on y, its columns on x) with axis and colour-bar titles."""
    fig = go.Figure(go.Heatmap(z=frame.to_numpy(), x=[str(c) for c in frame.columns], y=[str(i) for i in frame.index],
                               colorscale=colorscale, colorbar=colour_bar(colour_title),
                               hovertemplate=hover + "<extra></extra>", **heatmap))
    fig.update_layout(title=title, xaxis={"title": x_title}, yaxis={"title": y_title})
    return fig

