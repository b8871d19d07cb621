"""Figures build without a browser, carry titles and unit labels, and keep geographic order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from geomusic_lib import plots
from geomusic_lib.data.uci import load_uci
from geomusic_lib.evaluate import evaluate_run, load_history
from geomusic_lib.metrics import per_class_metrics
from geomusic_lib.params import EvaluateParams
from test_evaluate import CLASSES, random_predictions, tiny_predictions, write_run


def assert_offline_html(fig: go.Figure) -> None:
    """plotly.js is inlined, not loaded from a CDN (maps also need `plots.geo_assets_script`)."""
    html = plots.figure_html(fig, topojson=None)
    assert "plotly.js v" in html and '<script src="http' not in html


def test_confusion_matrix_is_in_geographic_order():
    fig = plots.confusion_matrix_figure(tiny_predictions(), CLASSES)
    heat = fig.data[0]
    assert list(heat.x) == ["United Kingdom", "France", "Germany", "Japan"]
    z = np.asarray(heat.z, dtype=float)
    assert np.allclose(np.nansum(z, axis=1), 1)  # rows normalised
    assert z[2, 1] == pytest.approx(1.0)  # Germany -> France
    # region boundaries: UK | France Germany | Japan  -> 2 boundaries, each a vertical and a horizontal line
    assert len(fig.layout.shapes) == 4
    assert fig.layout.xaxis.title.text == "predicted country" and fig.layout.title.text
    assert_offline_html(fig)


def test_choropleth_uses_iso3_codes():
    per_class = per_class_metrics(tiny_predictions(), CLASSES)
    fig = plots.accuracy_choropleth(per_class)
    geo = fig.data[0]
    assert geo.locationmode == "ISO-3"
    assert set(geo.locations) == {"GBR", "FRA", "DEU", "JPN"}
    assert dict(zip(geo.locations, geo.z))["FRA"] == pytest.approx(1.0)
    assert_offline_html(fig)


def test_choropleth_names_classes_that_are_not_countries():
    per_class = per_class_metrics(tiny_predictions(), CLASSES)
    per_class.loc[3, "class"] = "Atlantis"
    fig = plots.accuracy_choropleth(per_class)
    assert "Atlantis" in fig.layout.title.text and len(fig.data[0].locations) == 3


def test_reliability_diagram_has_a_line_per_model():
    pred, _ = random_predictions()
    fig = plots.reliability_diagram({"a": pred, "b": tiny_predictions()}, n_bins=10)
    names = [t.name for t in fig.data if isinstance(t, go.Scatter)]
    assert names == ["perfectly calibrated", "a", "b"]
    assert "confidence" in fig.layout.xaxis2.title.text
    assert_offline_html(fig)


def test_learning_curves_from_a_run_history(tmp_path):
    run = write_run(tmp_path)
    history = load_history(run / "models" / "fcnn")
    assert history["fold"].eq(-1).all()
    fig = plots.learning_curves({"fcnn": history})
    assert len(fig.data) == 3
    assert fig.layout.yaxis.title.text.startswith("cross-entropy")
    assert_offline_html(fig)


def test_learning_curves_per_fold(tmp_path):
    for k in range(3):
        (tmp_path / f"fold_{k}").mkdir()
        pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.9, 0.8], "val_loss": [1.1, 1.0, 0.95],
                      "val_accuracy": [0.1, 0.2, 0.3]}).to_csv(tmp_path / f"fold_{k}" / "history.csv", index=False)
    history = load_history(tmp_path)
    assert sorted(history["fold"].unique()) == [0, 1, 2]
    fig = plots.learning_curves(history)
    assert len(fig.data) == 9 and sum(bool(t.showlegend) for t in fig.data) == 2


def test_model_comparison_has_error_bars(tmp_path):
    table = evaluate_run(write_run(tmp_path), EvaluateParams(bootstrap=100))
    fig = plots.model_comparison(table, "accuracy")
    assert [t.name for t in fig.data] == ["networks", "baselines"]
    bar = fig.data[0]
    assert bar.error_y.array[0] >= 0 and bar.error_y.arrayminus[0] >= 0
    assert fig.layout.yaxis.title.text == "Accuracy (share of tracks)"
    km = plots.model_comparison(table, "median_km")
    assert "km" in km.layout.yaxis.title.text
    with pytest.raises(KeyError, match="metric"):
        plots.model_comparison(table, "no_such_metric")


def test_distance_cdf_reaches_one():
    fig = plots.distance_error_cdf({"m": tiny_predictions()}, CLASSES)
    assert fig.data[0].y[-1] == pytest.approx(1.0)
    assert fig.layout.xaxis.title.text == "great-circle error (km)"


def test_interpretability_figures_build():
    importance = pd.DataFrame({"feature": ["a", "b", "c"], "importance": [0.1, 0.3, 0.2]})
    fig = plots.feature_importance_figure(importance, top=2)
    assert list(fig.data[0].y) == ["c", "b"]
    per_class = pd.DataFrame(np.random.default_rng(0).random((3, 2)), index=["a", "b", "c"], columns=["Mali", "Japan"])
    assert plots.per_class_importance_figure(per_class).data[0].z.shape == (3, 2)
    attention = pd.DataFrame([[0.2, 0.8], [0.5, 0.5]], index=["Africa", "Asia"], columns=["s0", "s1"])
    assert plots.attention_figure(attention).layout.yaxis.title.text == "true region of the track"
    emb = pd.DataFrame({"x": [0, 1, 2], "y": [1, 0, 1], "country": ["Mali", "Japan", "India"],
                        "region": ["Africa", "Asia", "Asia"]})
    fig = plots.tsne_figure(emb)
    assert [t.name for t in fig.data] == ["Africa", "Asia"] and list(fig.data[1].text) == ["Japan", "India"]
    for f in (fig, plots.attention_figure(attention)):
        assert_offline_html(f)


def test_world_map_can_be_embedded_for_offline_pages(tmp_path):
    topo = tmp_path / "world_110m.json"
    topo.write_text('{"type": "Topology", "objects": {}}')
    script = plots.geo_assets_script(topo)
    assert script.startswith("<script>") and "topojson['world_110m'] = {" in script
    fig = plots.accuracy_choropleth(per_class_metrics(tiny_predictions(), CLASSES))
    html = plots.figure_html(fig, topo)
    assert html.index("PlotlyGeoAssets.topojson['world_110m']") < html.index("Plotly.newPlot")
    with pytest.raises(FileNotFoundError, match="no world map"):
        plots.geo_assets_script(tmp_path / "missing.json")


def test_shipped_world_map_has_the_country_layer():
    import json

    topology = json.loads(plots.WORLD_TOPOJSON.read_text())
    assert "countries" in topology["objects"]


# --------------------------------------------------------------------------- 01, 02 and 09's figures
def test_class_sizes_are_drawn_largest_first():
    fig = plots.class_sizes_figure(pd.Series(["Mali", "Japan", "Japan", "India", "Japan", "India"]))
    assert list(fig.data[0].x) == ["Japan", "India", "Mali"] and list(fig.data[0].y) == [3, 2, 1]
    assert fig.layout.yaxis.title.text == "tracks (count)" and fig.layout.title.text
    assert_offline_html(fig)


def test_class_map_sizes_dots_by_tracks_and_keeps_classes_without_a_continent():
    classes = pd.DataFrame({"class": ["Mali", "Japan", "Atlantis"], "lat": [12.6, 35.7, 0.0],
                            "lon": [-8.0, 139.7, 0.0], "n_tracks": [5, 9, 1], "continent": ["Africa", "Asia", None]})
    fig = plots.class_map_figure(classes)
    shown = {name for trace in fig.data for name in trace.hovertext}
    assert shown == {"Mali", "Japan", "Atlantis"}
    assert {t.name for t in fig.data} == {"Africa", "Asia", "unknown"}
    assert "tracks per class" in fig.layout.title.text


@pytest.fixture(scope="module")
def uci():
    return load_uci(chromatic=True, collapse_chroma=False)  # the file's 4 x 29 grid


def test_class_profile_is_a_statistics_by_descriptors_grid(uci):
    grid = plots.class_profile(uci, "Mali")
    assert grid.shape == (4, 29) == uci.grid_shape
    assert list(grid.columns[:2]) == ["timbre01", "timbre02"] and grid.columns[-1] == "chroma12"
    x = uci.frame[uci.feature_names]
    mali = uci.frame["label"] == "Mali"
    expected = x.loc[mali, "s2_chroma03"].mean() - x["s2_chroma03"].mean()
    assert grid.loc["statistic 2", "chroma03"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="no tracks"):
        plots.class_profile(uci, "Atlantis")


def test_class_profile_heatmap_draws_the_first_preferred_class_present(uci):
    fig = plots.class_profile_heatmap(uci, ["Atlantis", "Japan", "Mali"])
    assert np.asarray(fig.data[0].z).shape == (4, 29)
    assert fig.layout.title.text.startswith("Japan:")
    assert fig.layout.xaxis.title.text == "descriptor (not time)" and "sd" in fig.data[0].colorbar.title.text
    assert plots.class_profile_heatmap(uci, ["Atlantis"]).layout.title.text.startswith(f"{uci.classes()[0]}:")


def top_k_table() -> tuple[pd.DataFrame, list[str]]:
    """Four tracks; in two of them the true country is among the guesses, below rank 1."""
    tops = [["Indonesia", "Malaysia", "Philippines"], ["Senegal", "Mali", "Guinea"],
            ["Japan", "China", "South Korea"], ["India", "Pakistan", "Bangladesh"]]
    frame = pd.DataFrame({"track_id": [f"t{i}" for i in range(4)]})
    for j in range(3):
        frame[f"top{j + 1}"] = [t[j] for t in tops]
    for j, p in enumerate([0.6, 0.3, 0.1]):
        frame[f"p{j + 1}"] = p
    return frame, ["Philippines", "Mali", "Japan", "Democratic Republic of the Congo"]


def test_top_k_bars_are_in_rank_order_in_every_panel_even_with_the_true_country():
    result, truth = top_k_table()
    fig = plots.top_k_figure(result, truth)
    for i in range(len(result)):
        axis = fig.layout[f"yaxis{'' if i == 0 else i + 1}"]
        assert list(axis.categoryarray) == [result[f"top{j}"].iloc[i] for j in (1, 2, 3)]
        assert axis.categoryorder == "array" and axis.autorange == "reversed"  # top1 at the top
    true_bars = {t.yaxis: list(t.y) for t in fig.data if t.name == "the true country"}
    assert true_bars == {"y": ["Philippines"], "y2": ["Mali"], "y3": ["Japan"]}  # not y4: its truth is no guess
    assert sum(bool(t.showlegend) for t in fig.data) == 2
    assert "probability" in fig.layout.xaxis4.title.text
    assert fig.layout.xaxis5.visible is False and fig.layout.yaxis6.visible is False  # empty cells: no axes


def test_top_k_panel_labels_and_country_names_stay_inside_their_own_panel():
    result, truth = top_k_table()
    truth[1] = "A true country with a very long name indeed, longer than any panel is wide"
    result["track_id"] = "spotify:track:" + result["track_id"] * 12
    fig = plots.top_k_figure(result, truth, cols=2)
    plot_w = fig.layout.width - fig.layout.margin.l - fig.layout.margin.r
    domains = sorted({tuple(fig.layout[f"xaxis{'' if i == 0 else i + 1}"].domain) for i in range(4)})
    assert len(domains) == 2
    gap_px = (domains[1][0] - domains[0][1]) * plot_w
    longest = max(len(str(c)) for c in result[["top1", "top2", "top3"]].to_numpy().ravel())
    assert gap_px >= longest * plots._CHAR_PX  # the right panel's country names fit in the gap
    centre_px = (sum(domains[1]) - sum(domains[0])) / 2 * plot_w
    for note in fig.layout.annotations:
        lines = note.text.split("<br>")
        assert len(lines) <= 2 and max(len(line) for line in lines) * plots._CHAR_PX <= centre_px
    rows = sorted({tuple(fig.layout[f"yaxis{'' if i == 0 else i + 1}"].domain) for i in range(4)})
    plot_h = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert (rows[1][0] - rows[0][1]) * plot_h >= 2 * 18  # two title lines between rows
    with pytest.raises(ValueError, match="true labels"):
        plots.top_k_figure(result, truth[:2])
