"""Figures build without a browser, carry titles and unit labels, and keep geographic order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from geomusic_lib import plots

from geomusic_lib.plots import predict as plots_predict
from geomusic_lib.data import load_uci
from geomusic_lib.evaluation import evaluate_run, load_history, per_class_metrics
from geomusic_lib.core import EvaluateParams
from geomusic_lib.predict import Predictions
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


def test_confusion_matrix_fits_the_book_and_its_colour_bar_title_runs_along_the_bar():
    names = [f"Country number {i}" for i in range(60)]
    classes = pd.DataFrame({"class": names, "lat": np.linspace(-40, 60, 60), "lon": np.linspace(-170, 170, 60),
                            "region": [f"region {i // 6}" for i in range(60)], "continent": "Asia", "n_tracks": 3})
    y = np.arange(60).repeat(2)
    pred = Predictions(track_ids=np.array([f"t{i}" for i in range(120)]), fold=np.full(120, -1), y_true=y,
                       proba=np.eye(60)[(y + 1) % 60], classes=names, true_lat=np.zeros(120), true_lon=np.zeros(120))
    for fig in (plots.confusion_matrix_figure(pred, classes), plots.confusion_matrix_figure(tiny_predictions(), CLASSES)):
        bar = fig.data[0].colorbar
        assert bar.title.side == "right" and "true country" in bar.title.text and "<br>" not in bar.title.text
        assert fig.layout.width <= plots.BOOK_WIDTH_PX and fig.layout.height <= plots.BOOK_WIDTH_PX


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


def test_the_accuracy_map_draws_provinces_as_points_and_countries_as_a_choropleth():
    countries = per_class_metrics(tiny_predictions(), CLASSES)
    assert isinstance(plots.accuracy_map(countries, model="fcnn").data[0], go.Choropleth)
    provinces = countries.assign(**{"class": ["Shaanxi", "Jiangsu", "Hebei", "Atlantis"],
                                    "lat": [34.3, 32.1, 38.0, np.nan], "lon": [108.9, 118.8, 114.5, np.nan]})
    fig = plots.accuracy_map(provinces, model="fcnn")
    points = fig.data[0]
    assert isinstance(points, go.Scattergeo) and list(points.text) == ["Shaanxi", "Jiangsu", "Hebei"]
    assert list(points.marker.color) == pytest.approx(list(provinces["recall"][:3]))
    assert "no coordinates: Atlantis" in fig.layout.title.text and "fcnn" in fig.layout.title.text
    assert_offline_html(fig)


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


def test_tsne_regions_never_share_colour_and_symbol_and_a_continent_shares_a_colour():
    from geomusic_lib.data import country_table

    table = country_table()
    table = table[table["continent"] != "Antarctica"].groupby("region").head(2)  # every UN region, 2 countries
    emb = pd.DataFrame({"x": np.arange(len(table)), "y": 0.0, "country": table["country"].to_numpy(),
                        "region": table["region"].to_numpy()})
    fig = plots.tsne_figure(emb)
    styles = [(t.name, t.legendgroup, t.marker.color, t.marker.symbol) for t in fig.data]
    assert len(styles) == emb["region"].nunique() == 22
    assert len({(colour, symbol) for _, _, colour, symbol in styles}) == len(styles)
    for continent in {group for _, group, _, _ in styles}:
        mine = [s for s in styles if s[1] == continent]
        assert len({colour for _, _, colour, _ in mine}) == 1  # one colour per continent ...
        assert len({symbol for _, _, _, symbol in mine}) == len(mine)  # ... and a shape per region in it
    assert len({colour for _, _, colour, _ in styles}) == len({group for _, group, _, _ in styles})
    by_region = {name: group for name, group, _, _ in styles}
    assert by_region["Western Africa"] == by_region["Middle Africa"] == "Africa"
    assert by_region["Caribbean"] == "North America" and fig.data[0].legendgrouptitle.text == "Africa"
    assert sum(len(t.x) for t in fig.data) == len(emb)


def test_tsne_uses_a_continent_column_and_names_regions_it_cannot_place():
    emb = pd.DataFrame({"x": range(4), "y": range(4), "country": ["Bayern", "Sachsen", "Mali", "Mali"],
                        "region": ["Bavaria", "Saxony", "Western Africa", "Western Africa"]})
    styles = plots.region_styles(emb)
    assert list(styles["continent"]) == ["Africa", "other", "other"]  # unknown regions and countries: 'other'
    assert styles["symbol"].iloc[1] != styles["symbol"].iloc[2]
    styles = plots.region_styles(emb.assign(continent=["Europe", "Europe", "Africa", "Africa"]))
    assert dict(zip(styles["region"], styles["colour"])) == {
        "Western Africa": plots.CONTINENT_COLOURS["Africa"], "Bavaria": plots.CONTINENT_COLOURS["Europe"],
        "Saxony": plots.CONTINENT_COLOURS["Europe"]}


def test_every_colour_bar_title_runs_along_its_bar(uci):
    from geomusic_lib.plots import melody_weight_figure

    notes = pd.DataFrame({"step": range(4), "onset": [0.0, 1, 2, 3], "duration": 1.0, "midi": [60, 62, 64, 65],
                          "is_rest": False})
    figures = [
        plots.confusion_matrix_figure(tiny_predictions(), CLASSES),
        plots.accuracy_choropleth(per_class_metrics(tiny_predictions(), CLASSES)),
        plots.class_profile_heatmap(uci, ["Mali"]),
        plots.per_class_importance_figure(pd.DataFrame([[0.1, 0.2]], index=["a"], columns=["Mali", "Japan"])),
        plots.attention_figure(pd.DataFrame([[0.2, 0.8]], index=["Western Africa"], columns=["s0", "s1"])),
        melody_weight_figure([notes], [np.arange(4.0)], ["a tune"], weight_label="integrated gradients (change)"),
    ]
    for fig in figures:
        bar = fig.data[0].marker.colorbar if isinstance(fig.data[0], go.Bar) else fig.data[0].colorbar
        assert bar.title.side == "right" and "<br>" not in bar.title.text, fig.layout.title.text


def test_learning_curves_leave_room_between_panels_and_put_the_legend_below(tmp_path):
    history = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.9], "val_loss": [1.1, 1.0], "val_accuracy": [.1, .2]})
    fig = plots.learning_curves({"fcnn": history, "lstm_attention": history})
    assert fig.layout.xaxis2.domain[0] - fig.layout.xaxis.domain[1] >= 0.12  # the right panel's axis title fits
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0


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


LONG_NAMES = ["Central African Republic", "Bosnia and Herzegovina", "Democratic Republic of the Congo",
              "Saint Vincent and the Grenadines", "Mali"]


def top_k_table(n: int = 4, k: int = 3, names: list[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """`n` tracks with `k` guesses each; the true country is at rank 2, 3, ... or missing (every fourth)."""
    names = names or ["Indonesia", "Malaysia", "Philippines", "Senegal", "Mali", "Guinea", "Japan", "China"]
    frame = pd.DataFrame({"track_id": [f"t{i}" for i in range(n)]})
    tops = [[names[(i + j) % len(names)] for j in range(k)] for i in range(n)]
    for j in range(k):
        frame[f"top{j + 1}"] = [t[j] for t in tops]
        frame[f"p{j + 1}"] = 0.5 ** (j + 1)
    truth = [t[1 + i % (k - 1)] if i % 4 != 3 else "Democratic Republic of the Congo" for i, t in enumerate(tops)]
    return frame, truth


def _axis(fig: go.Figure, kind: str, i: int):
    return fig.layout[f"{kind}axis{'' if i == 0 else i + 1}"]


def test_top_k_bars_are_in_rank_order_in_every_panel_even_with_the_true_country():
    result, truth = top_k_table(n=5, k=5, names=LONG_NAMES + ["Japan", "China"])
    fig = plots.top_k_figure(result, truth)
    for i in range(len(result)):
        yaxis = _axis(fig, "y", i)
        bars = sorted((y, country) for t in fig.data if t.yaxis == ("y" if i == 0 else f"y{i + 1}")
                      for y, (country, _) in zip(t.y, t.customdata))
        assert [country for _, country in bars] == [result[f"top{j}"].iloc[i] for j in range(1, 6)]
        assert [y for y, _ in bars] == list(range(5)) and list(yaxis.tickvals) == list(range(5))
        assert yaxis.range[0] > yaxis.range[1]  # reversed: position 0 (rank 1) at the top
        labels = [text.replace("<br>", " ") for text in yaxis.ticktext]
        assert labels == [c for _, c in bars]  # wrapped names, same order
        true_bars = [t for t in fig.data if t.name == "the true country" and t.yaxis == yaxis.plotly_name.replace("axis", "")]
        if truth[i] in labels:  # highlighted in its own place
            assert [list(t.y) for t in true_bars] == [[labels.index(truth[i])]]
        else:
            assert not true_bars and "not in the top 5" in fig.layout.annotations[i].text.replace("<br>", " ")
    assert sum(bool(t.showlegend) for t in fig.data) == 2


@pytest.mark.parametrize("n, cols", [(1, 3), (2, 3), (4, 3), (5, 2), (7, 4), (3, 1)])
def test_top_k_labels_and_titles_never_reach_a_neighbouring_panel(n: int, cols: int):
    result, truth = top_k_table(n=n, k=5, names=LONG_NAMES)
    result["track_id"] = "spotify:track:" + result["track_id"] * 12
    fig = plots.top_k_figure(result, truth, cols=cols)
    char = plots_predict._CHAR_PX
    margin, width = fig.layout.margin, fig.layout.width
    plot_w, plot_h = width - margin.l - margin.r, fig.layout.height - margin.t - margin.b
    assert width <= plots.BOOK_WIDTH_PX  # the book's column: nothing cut off or scrolled
    widest = max(len(line) for i in range(n) for text in _axis(fig, "y", i).ticktext for line in text.split("<br>"))
    assert max(len(line) for text in _axis(fig, "y", 0).ticktext for line in text.split("<br>")) <= 20
    starts = sorted({_axis(fig, "x", i).domain[0] * plot_w for i in range(n)})
    ends = sorted({_axis(fig, "x", i).domain[1] * plot_w for i in range(n)})
    assert margin.l >= widest * char  # the first column's names
    assert all(s - e >= widest * char for e, s in zip(ends, starts[1:]))  # the next column's names fit the gap
    bottoms = sorted({_axis(fig, "y", i).domain[0] * plot_h for i in range(n)}, reverse=True)
    for i, note in enumerate(fig.layout.annotations[:n]):
        lines = note.text.split("<br>")
        left = note.x * plot_w
        right = left + max(len(line) for line in lines) * char
        col_start = _axis(fig, "x", i).domain[0] * plot_w
        assert left >= -margin.l and right <= plot_w + margin.r
        assert all(right <= s - widest * char for s in starts if s > col_start)  # ends before the next column
        above = [b for b in bottoms if b > _axis(fig, "y", i).domain[1] * plot_h]
        top = note.y * plot_h + len(lines) * 16
        assert not above or top + 24 <= min(above)  # clear of the row above and its probability ticks
        assert len(lines) <= 3
    with pytest.raises(ValueError, match="true labels"):
        plots.top_k_figure(result, truth[:-1])


def test_distance_cdf_stays_small_at_any_test_size():
    import numpy as np

    from geomusic_lib.plots import cdf_steps

    values = np.random.default_rng(0).exponential(1000, 80_000)
    x, share = cdf_steps(values)
    assert len(x) <= 1002 and share[-1] == 1.0 and np.all(np.diff(share) >= 0)
    exact_x, exact_share = cdf_steps(np.array([0.0, 0.0, 5.0, 7.0]))
    assert exact_x.tolist() == [0.0, 5.0, 7.0] and exact_share.tolist() == [0.5, 0.75, 1.0]
