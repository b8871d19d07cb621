"""Metrics against hand-computed values on tiny arrays."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, top_k_accuracy_score

from geomusic_lib.evaluation import evaluate_run, metrics as evaluate
from geomusic_lib.evaluation import (
    HEADLINE,
    error_km,
    evaluate_predictions,
    expected_calibration_error,
    geographic_order,
    ordered_confusion,
    per_class_metrics,
    top_k_hits,
)
from geomusic_lib.core import EvaluateParams
from geomusic_lib.predict import Predictions, read_predictions, write_predictions

LONDON = (51.5074, -0.1278)
PARIS = (48.8566, 2.3522)
BERLIN = (52.5200, 13.4050)
TOKYO = (35.6762, 139.6503)

CLASSES = pd.DataFrame({
    "class": ["United Kingdom", "France", "Germany", "Japan"],
    "lat": [LONDON[0], PARIS[0], BERLIN[0], TOKYO[0]],
    "lon": [LONDON[1], PARIS[1], BERLIN[1], TOKYO[1]],
    "region": ["Northern Europe", "Western Europe", "Western Europe", "Eastern Asia"],
    "continent": ["Europe", "Europe", "Europe", "Asia"],
    "n_tracks": [2, 1, 1, 1],
})


def tiny_predictions(with_coords: bool = True) -> Predictions:
    """Five tracks, four classes; rows chosen so every metric is easy to do by hand."""
    proba = np.array([
        [0.7, 0.2, 0.1, 0.0],  # true UK      -> UK      (right)
        [0.05, 0.6, 0.2, 0.15],  # true UK    -> France  (wrong; same continent, other region)
        [0.2, 0.5, 0.3, 0.0],  # true France  -> France  (right)
        [0.1, 0.5, 0.4, 0.0],  # true Germany -> France  (wrong; same region)
        [0.45, 0.1, 0.1, 0.35],  # true Japan -> UK     (wrong; Japan second)
    ])
    y_true = np.array([0, 0, 1, 2, 3])
    lat = CLASSES["lat"].to_numpy()[y_true] if with_coords else np.full(5, np.nan)
    lon = CLASSES["lon"].to_numpy()[y_true] if with_coords else np.full(5, np.nan)
    return Predictions(
        track_ids=np.array([f"t{i}" for i in range(5)]), fold=np.full(5, -1), y_true=y_true,
        proba=proba, classes=list(CLASSES["class"]), true_lat=lat, true_lon=lon,
    )


def test_london_paris_is_about_344_km():
    pred = Predictions(
        track_ids=np.array(["a"]), fold=np.array([-1]), y_true=np.array([0]),
        proba=np.array([[0.1, 0.9, 0.0, 0.0]]), classes=list(CLASSES["class"]),
        true_lat=np.array([LONDON[0]]), true_lon=np.array([LONDON[1]]),
    )
    km = error_km(pred, CLASSES, np.array([1]))
    assert km[0] == pytest.approx(344, abs=3)


def test_headline_metrics_match_hand_computed_values():
    m = evaluate_predictions(tiny_predictions(), CLASSES, bootstrap=0)
    assert m["n"] == 5 and m["n_classes"] == 4
    assert m["accuracy"] == pytest.approx(2 / 5)
    # top-3: row 1 ranks UK last; the others have the true class in their three largest
    assert m["top3_accuracy"] == pytest.approx(4 / 5)
    assert m["top5_accuracy"] == pytest.approx(1.0)
    # recall per class: UK 1/2, France 1/1, Germany 0/1, Japan 0/1
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0 + 0) / 4)
    # F1: UK p=1/2 r=1/2 -> 1/2; France p=1/3 r=1 -> 1/2; Germany 0; Japan 0
    assert m["macro_f1"] == pytest.approx((0.5 + 0.5) / 4)
    # region: rows 0, 2, 3 (Germany and France share Western Europe)
    assert m["region_accuracy"] == pytest.approx(3 / 5)
    # continent: rows 0-3 are all Europe
    assert m["continent_accuracy"] == pytest.approx(4 / 5)
    km = np.array([0.0, 344.0, 0.0, 878.0, 9560.0])  # UK-France, France-Germany, London-Tokyo
    assert m["median_km"] == pytest.approx(344, abs=3)
    assert m["mean_km"] == pytest.approx(km.mean(), rel=0.01)
    assert m["n_true_coords"] == 5


def test_sklearn_agrees_on_the_tiny_case():
    pred = tiny_predictions()
    y_pred = pred.proba.argmax(axis=1)
    m = evaluate_predictions(pred, CLASSES, bootstrap=0)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(pred.y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(pred.y_true, y_pred, average="macro"))
    assert top_k_hits(pred.proba, pred.y_true, 2).mean() == pytest.approx(
        top_k_accuracy_score(pred.y_true, pred.proba, k=2, labels=range(4))
    )


def test_unknown_true_coordinates_fall_back_to_the_true_class():
    with_coords = evaluate_predictions(tiny_predictions(True), CLASSES, bootstrap=0)
    without = evaluate_predictions(tiny_predictions(False), CLASSES, bootstrap=0)
    assert without["mean_km"] == pytest.approx(with_coords["mean_km"])
    assert without["n_true_coords"] == 0


def test_expected_calibration_error_by_hand():
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
    y_true = np.array([0, 1, 0, 1])
    # bin (0.8, 0.9]: 2 rows, confidence 0.9, accuracy 0.5 -> gap 0.4, weight 2/4
    # bin (0.5, 0.6]: 1 row, confidence 0.6, accuracy 1 -> gap 0.4, weight 1/4
    # bin (0.6, 0.7]: 1 row, confidence 0.7, accuracy 1 -> gap 0.3, weight 1/4
    expected = 0.5 * 0.4 + 0.25 * 0.4 + 0.25 * 0.3
    assert expected_calibration_error(proba, y_true, n_bins=10) == pytest.approx(expected)


def random_predictions(n: int = 300, k: int = 6, seed: int = 0) -> tuple[Predictions, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k))
    y_true = rng.integers(0, k, size=n)
    logits[np.arange(n), y_true] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    classes = pd.DataFrame({
        "class": [f"c{i}" for i in range(k)],
        "lat": rng.uniform(-40, 60, k), "lon": rng.uniform(-120, 140, k),
        "region": [f"r{i % 3}" for i in range(k)], "continent": [f"k{i % 2}" for i in range(k)],
        "n_tracks": np.bincount(y_true, minlength=k),
    })
    lat = classes["lat"].to_numpy()[y_true] + rng.normal(0, 1, n)
    lon = classes["lon"].to_numpy()[y_true] + rng.normal(0, 1, n)
    pred = Predictions(np.arange(n).astype(str), np.full(n, -1), y_true, proba, list(classes["class"]), lat, lon)
    return pred, classes


def test_bootstrap_cis_contain_the_point_estimate():
    pred, classes = random_predictions()
    m = evaluate_predictions(pred, classes, bootstrap=500, seed=3)
    for name in HEADLINE:
        assert m[f"{name}_ci_low"] <= m[name] <= m[f"{name}_ci_high"], name
        assert m[f"{name}_ci_low"] < m[f"{name}_ci_high"], name


def test_bootstrap_is_seeded():
    pred, classes = random_predictions()
    a = evaluate_predictions(pred, classes, bootstrap=200, seed=1)
    b = evaluate_predictions(pred, classes, bootstrap=200, seed=1)
    c = evaluate_predictions(pred, classes, bootstrap=200, seed=2)
    assert a == b
    assert a["accuracy_ci_low"] != c["accuracy_ci_low"] or a["macro_f1_ci_high"] != c["macro_f1_ci_high"]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_vectorised_bootstrap_statistics_equal_the_point_estimates(monkeypatch):
    """With the identity 'resample', every bootstrap statistic must equal sklearn's value."""
    pred, classes = random_predictions(n=120, k=7, seed=5)
    pred.y_true[pred.y_true == 6] = 5  # one class never true: exercises sklearn's label rules
    monkeypatch.setattr(evaluate, "_resamples", lambda n, b, seed: iter([np.arange(n)[None, :]]))
    m = evaluate_predictions(pred, classes, bootstrap=1, seed=0)
    for name in HEADLINE:
        assert m[f"{name}_ci_low"] == pytest.approx(m[name]), name


def test_bootstrap_chunks_bound_memory():
    chunks = list(evaluate._resamples(n=1000, n_boot=50, seed=0, max_cells=10_000))
    assert sum(len(c) for c in chunks) == 50 and max(c.size for c in chunks) <= 10_000


def test_per_class_metrics_by_hand():
    table = per_class_metrics(tiny_predictions(), CLASSES)
    assert list(table["class"]) == list(CLASSES["class"])
    assert table["support"].tolist() == [2, 1, 1, 1]
    assert table["n_predicted"].tolist() == [2, 3, 0, 0]
    assert table["precision"].tolist() == pytest.approx([0.5, 1 / 3, 0, 0])
    assert table["recall"].tolist() == pytest.approx([0.5, 1, 0, 0])
    assert table.loc[0, "median_km"] == pytest.approx(344 / 2, abs=2)


def test_classes_are_aligned_by_name_not_position():
    shuffled = CLASSES.iloc[[3, 1, 0, 2]].reset_index(drop=True)
    assert evaluate_predictions(tiny_predictions(), shuffled, bootstrap=0) == evaluate_predictions(
        tiny_predictions(), CLASSES, bootstrap=0
    )


def test_missing_class_in_classes_table_is_named():
    with pytest.raises(ValueError, match="Japan"):
        evaluate_predictions(tiny_predictions(), CLASSES.iloc[:3], bootstrap=0)


def test_geographic_order_groups_regions_then_longitude():
    order = geographic_order(CLASSES)
    names = CLASSES["class"].to_numpy()[order].tolist()
    # Northern Europe (mean lon -0.1) < Western Europe (7.9) < Eastern Asia (139.7)
    assert names == ["United Kingdom", "France", "Germany", "Japan"]
    confusion = ordered_confusion(tiny_predictions(), CLASSES)
    assert list(confusion.index) == names and confusion.to_numpy().sum() == 5
    assert confusion.loc["Germany", "France"] == 1


def test_distance_decision_uses_the_decision_module(monkeypatch):
    import sys
    import types

    fake = types.ModuleType("geomusic_lib.predict.decision")
    fake.distance_aware_predict = lambda proba, lat, lon: np.zeros(len(proba), dtype=int)
    monkeypatch.setitem(sys.modules, "geomusic_lib.predict.decision", fake)
    m = evaluate_predictions(tiny_predictions(), CLASSES, decision="distance", bootstrap=0)
    assert m["accuracy"] == pytest.approx(2 / 5)  # every row predicted UK: rows 0 and 1
    assert m["top3_accuracy"] == pytest.approx(4 / 5)  # top-k does not depend on the decision


def write_run(tmp_path):
    run = tmp_path / "runs" / "tiny"
    (run / "data").mkdir(parents=True)
    CLASSES.to_csv(run / "data" / "classes.csv", index=False)
    pred = tiny_predictions()
    names = np.array(CLASSES["class"])
    for name in ["fcnn", "majority"]:
        proba = pred.proba if name == "fcnn" else np.tile([0.4, 0.2, 0.2, 0.2], (5, 1))
        write_predictions(run / "models" / name / "predictions.parquet", pred.track_ids, names[pred.y_true],
                          proba, names, pred.true_lat, pred.true_lon)
    pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.8], "val_loss": [1.1, 0.9],
                  "val_accuracy": [0.2, 0.3]}).to_csv(run / "models" / "fcnn" / "history.csv", index=False)
    return run


def test_evaluate_run_writes_one_comparison_table(tmp_path):
    run = write_run(tmp_path)
    table = evaluate_run(run, EvaluateParams(bootstrap=50))
    assert table["model"].tolist() == ["fcnn", "majority"]
    assert table["kind"].tolist() == ["model", "baseline"]
    assert table.loc[0, "accuracy"] == pytest.approx(0.4)
    on_disk = pd.read_csv(run / "eval" / "metrics.csv")
    assert on_disk["model"].tolist() == ["fcnn", "majority"]
    payload = json.loads((run / "eval" / "metrics.json").read_text())
    assert payload["models"][0]["model"] == "fcnn" and payload["bootstrap"] == 50
    assert {"accuracy_ci_low", "mean_km_ci_high"} <= set(payload["models"][0])
    per_class = pd.read_csv(run / "eval" / "per_class" / "majority.csv")
    assert per_class["recall"].tolist() == pytest.approx([1, 0, 0, 0])


def test_evaluate_run_without_predictions_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="Train the models"):
        evaluate_run(tmp_path)


def test_round_trip_through_the_predictions_file(tmp_path):
    run = write_run(tmp_path)
    pred = read_predictions(run / "models" / "fcnn" / "predictions.parquet")
    assert evaluate_predictions(pred, CLASSES, bootstrap=0) == evaluate_predictions(tiny_predictions(), CLASSES,
                                                                                    bootstrap=0)


def test_shown_table_hides_the_index_and_rounds_kilometres():
    import pandas as pd

    from geomusic_lib.book import shown

    html = shown(pd.DataFrame({"model": ["fcnn"], "accuracy": [0.47619], "median_km": [1234.567]})).to_html()
    assert "0.476" in html and "1,235" in html and "1234.567" not in html
    assert "row_heading" not in html  # no index column
    assert ">median km<" in html and "median_km<" not in html  # headers wrap at the space


def test_unknown_regions_are_neither_a_match_nor_a_miss():
    import numpy as np

    from geomusic_lib.evaluation.metrics import _same_known

    continent = np.array(["", "", "Asia", "Europe"])
    hits = _same_known(continent, np.array([1, 2, 2, 2]), np.array([0, 2, 2, 3]))
    assert np.isnan(hits[0]) and hits[1:].tolist() == [1.0, 1.0, 0.0]
    assert np.isnan(_same_known(np.array(["", "", "Asia"]), np.array([1, 2]), np.array([0, 2]))).all()  # one group


def test_best_network_can_pass_over_frames_models(tmp_path):
    import torch

    from geomusic_lib.evaluation import best_network

    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    pd.DataFrame({"model": ["rnn", "fcnn", "logreg"], "kind": ["model", "model", "baseline"],
                  "accuracy": [0.6, 0.5, 0.7]}).to_csv(run / "eval" / "metrics.csv", index=False)
    def save(name: str, view: str) -> None:
        (run / "models" / name).mkdir(parents=True, exist_ok=True)
        torch.save({"format_version": 1, "model_name": name, "model_config": {}, "state_dict": {}, "classes": ["A"],
                    "feature_names": ["f"], "view": view}, run / "models" / name / "checkpoint_best.pt")

    save("rnn", "frames")
    save("fcnn", "vector")
    assert best_network(run)[0] == "rnn"
    assert best_network(run, tabular=True)[0] == "fcnn"
    for name, losses in (("rnn", [2.0, 1.8]), ("fcnn", [1.9, 1.7, 1.75])):  # chosen on validation, not test
        pd.DataFrame({"epoch": range(1, len(losses) + 1), "val_loss": losses}).to_csv(
            run / "models" / name / "history.csv", index=False)
    assert best_network(run)[0] == "fcnn"
    save("fcnn", "frames")
    with pytest.raises(FileNotFoundError, match="tabular view"):
        best_network(run, tabular=True)


def test_no_level_is_scored_where_the_labels_have_none():
    """Provinces get China's regions and no continent score (all lie in Asia); a class with no known
    region is left out of region accuracy rather than counted wrong."""
    from geomusic_lib.data import build_class_table

    provinces = ["Shanxi", "Hebei", "Jiangsu", "Hubei"]  # North, North, East, South Central China
    classes = build_class_table(pd.DataFrame({"label": provinces, "lat": np.nan, "lon": np.nan}), "china_province")
    assert dict(zip(classes["class"], classes["region"])) == {
        "Hebei": "North China", "Hubei": "South Central China", "Jiangsu": "East China", "Shanxi": "North China"}
    order = list(classes["class"])  # sorted: Hebei, Hubei, Jiangsu, Shanxi
    y_true = np.array([order.index(p) for p in ["Shanxi", "Shanxi", "Jiangsu", "Hubei"]])
    y_pred = np.array([order.index(p) for p in ["Hebei", "Jiangsu", "Jiangsu", "Shanxi"]])
    proba = np.eye(4)[y_pred] * 0.9 + 0.025
    pred = Predictions(track_ids=np.array(["a", "b", "c", "d"]), fold=np.full(4, -1), y_true=y_true, proba=proba,
                       classes=order, true_lat=np.full(4, np.nan), true_lon=np.full(4, np.nan))
    m = evaluate_predictions(pred, classes, bootstrap=50)
    assert m["region_accuracy"] == pytest.approx(2 / 4)  # Shanxi→Hebei (both North) and Jiangsu→Jiangsu
    assert np.isnan(m["continent_accuracy"]) and np.isnan(m["continent_accuracy_ci_low"])
    unknown = classes.assign(region=classes["region"].where(classes["class"] != "Hubei", ""))
    assert evaluate_predictions(pred, unknown, bootstrap=0)["region_accuracy"] == pytest.approx(2 / 3)
    flat = classes.assign(region="", continent="")
    m = evaluate_predictions(pred, flat, bootstrap=20)
    assert np.isnan(m["region_accuracy"]) and np.isnan(m["continent_accuracy"]) and m["accuracy"] == 0.25
