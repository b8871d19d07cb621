"""The figures of 08: feature importance (overall and per class), attention over steps, t-SNE of a model's embedding."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from geomusic_lib.data.geo import country_table, lookup_country
from geomusic_lib.plots.style import frame_heatmap as _frame_heatmap


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
