"""Training and evaluation figures (notebooks 03-07): learning curves, model comparison, confusion
matrix, distance errors, calibration, accuracy on the map."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from geomusic_lib.data.geo import lookup_country
from geomusic_lib.evaluation.metrics import (LOWER_IS_BETTER, align_classes, error_km, ordered_confusion, predicted_classes,
                                  reliability_table)
from geomusic_lib.plots.style import BOOK_WIDTH_PX, colour as _colour, colour_bar
from geomusic_lib.predict.predictions import Predictions

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
        colorbar=colour_bar("share of the true country's tracks" if normalize else "tracks"),
    ))
    boundaries = [i for i in range(1, len(names)) if region[i] != region[i - 1]]
    for b in boundaries:
        for axis in ("x", "y"):
            line = {"x0": b - 0.5, "x1": b - 0.5, "y0": -0.5, "y1": len(names) - 0.5} if axis == "x" else \
                   {"y0": b - 0.5, "y1": b - 0.5, "x0": -0.5, "x1": len(names) - 0.5}
            fig.add_shape(type="line", line={"color": "grey", "width": 1, "dash": "dot"}, **line)
    size = max(450, 16 * len(names) + 200)
    fig.update_layout(
        title=title, width=min(size + 100, BOOK_WIDTH_PX), height=min(size, BOOK_WIDTH_PX),
        xaxis={"title": "predicted country", "tickangle": -60, "constrain": "domain"},
        yaxis={"title": "true country", "autorange": "reversed", "scaleanchor": "x"},
    )
    return fig


def _iso3(name: str) -> str | None:
    """ISO 3166 alpha-3 code of a country name (None when it is not a country, e.g. a region)."""
    info = lookup_country(name)
    return info.iso3 if info is not None and info.iso3 else None


def _left_off(why: str, names: Sequence[str], shown: int = 8) -> str:
    """A map title's subtitle naming the classes it could not draw ('' when none)."""
    if not names:
        return ""
    return f"<br><sub>{why}: {', '.join(names[:shown])}{' …' if len(names) > shown else ''}</sub>"


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
        colorbar=colour_bar("recall (share of the country's tracks)" if metric == "recall" else f"{metric} (0-1)"), marker_line_color="white", marker_line_width=0.5,
    ))
    title += _left_off("not on the map", unmapped)
    fig.update_layout(title=title, geo={"showframe": False, "showcoastlines": True, "projection_type": "natural earth"},
                      margin={"l": 10, "r": 10, "t": 70, "b": 10})
    return fig


def accuracy_points_map(per_class: pd.DataFrame, metric: str = "recall",
                        title: str = "Accuracy per class (share of its tracks placed in the right class)") -> go.Figure:
    """Per-class accuracy as points at the class coordinates, sized by test tracks: for labels that are not
    countries (provinces, regions), which a country choropleth cannot draw."""
    shown = per_class.dropna(subset=["lat", "lon"])
    size = 8 + 22 * np.sqrt(shown["support"] / max(float(shown["support"].max()), 1.0))
    fig = go.Figure(go.Scattergeo(
        lat=shown["lat"], lon=shown["lon"], text=shown["class"], mode="markers+text", textposition="top center",
        marker={"size": size, "color": shown[metric], "cmin": 0, "cmax": 1, "colorscale": "Viridis",
                "line": {"color": "white", "width": 0.5},
                "colorbar": colour_bar(f"{metric} (share of the class's tracks)" if metric == "recall" else metric)},
        customdata=shown["support"], hovertemplate="%{text}<br>" + metric + ": %{marker.color:.2f}<br>"
                                                   "test tracks: %{customdata}<extra></extra>"))
    title += _left_off("no coordinates", sorted(set(per_class["class"].astype(str)) - set(shown["class"].astype(str))))
    fig.update_layout(title=title, geo={"showframe": False, "showcoastlines": True, "showcountries": True,
                                        "projection_type": "natural earth", "fitbounds": "locations"},
                      margin={"l": 10, "r": 10, "t": 70, "b": 10})
    return fig


def accuracy_map(per_class: pd.DataFrame, model: str, metric: str = "recall") -> go.Figure:
    """`metric` (recall by default) per class of `model` on a map: a country choropleth where most classes are countries, else
    points at the class coordinates (Chinese provinces, regions)."""
    countries = sum(_iso3(str(c)) is not None for c in per_class["class"])
    if countries * 2 >= len(per_class) or not {"lat", "lon"} <= set(per_class.columns):
        return accuracy_choropleth(per_class, metric, title=f"{metric.capitalize()} per country: {model}")
    return accuracy_points_map(per_class, metric, title=f"{metric.capitalize()} per class, at its coordinates: {model}")


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
    """Training and validation loss, and validation accuracy, per epoch (one line per fold and bag member;
    a member's validation rows are its held-out fold)."""
    if isinstance(history, pd.DataFrame):
        history = {"model": history}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Validation accuracy"), horizontal_spacing=0.14)
    for i, (name, frame) in enumerate(history.items()):
        keys = [k for k in ("fold", "member") if k in frame.columns and frame[k].nunique() > 1]
        groups = frame.groupby(keys) if keys else [((), frame)]
        for j, (key, part) in enumerate(groups):
            key = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
            label = " ".join([name] + [f"{k} {v}" for k, v in key.items() if v >= 0])
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
    fig.update_layout(title=title, height=460, legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.22,
                                                       "yanchor": "top"},  # below: the panels keep the width
                      margin={"b": 110})
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


def cdf_steps(values: np.ndarray, max_points: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF at its distinct values, thinned to at most `max_points` steps, so the
    figure stays small at any test size (80K MIRAGE test rows made 07's page 15 MB)."""
    distinct, counts = np.unique(values, return_counts=True)
    share = np.cumsum(counts) / max(len(values), 1)
    if len(distinct) > max_points:
        keep = np.searchsorted(share, np.linspace(0, 1, max_points), side="left").clip(0, len(distinct) - 1)
        keep = np.union1d(keep, [0, len(distinct) - 1])
        distinct, share = distinct[keep], share[keep]
    return distinct, share


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
        km = error_km(pred, classes, predicted_classes(pred, classes, decision))
        km, share = cdf_steps(km[~np.isnan(km)])
        fig.add_trace(go.Scatter(x=km, y=share, mode="lines", name=name, line={"shape": "hv", "color": _colour(i)},
                                 hovertemplate=name + "<br>within %{x:.0f} km: %{y:.2f}<extra></extra>"))
    fig.update_layout(title=title, xaxis={"title": "great-circle error (km)"},
                      yaxis={"title": "share of tracks within the error", "range": [0, 1]})
    return fig
