"""The findings text is written from the numbers it is given, and the showcase is chosen on
validation rows with a minimum support."""
import numpy as np
import pandas as pd
import pytest

from geomusic_lib.book import choose_showcase, compact_guesses, findings, prediction_findings, showcase_rows
from geomusic_lib.data import Split, identical_column_groups


def row(model, acc, low, high, kind="model", **extra):
    return {"model": model, "kind": kind, "accuracy": acc, "accuracy_ci_low": low, "accuracy_ci_high": high, **extra}


FLOOR = findings.Floor(n_classes=4, chance=0.25, majority=0.4, majority_class="Mali", n_test=50)


def test_against_floor_judges_by_the_interval():
    assert "even at the low end" in findings.against_floor(row("a", 0.7, 0.5, 0.8), FLOOR)
    assert "reaches down" in findings.against_floor(row("a", 0.45, 0.3, 0.6), FLOOR)
    assert "not above" in findings.against_floor(row("a", 0.35, 0.2, 0.5), FLOOR)
    assert "always answering Mali" in findings.against_floor(row("a", 0.35, 0.2, 0.5), FLOOR)


def test_countries_sentence_names_the_best_and_the_never_right():
    per_class = pd.DataFrame({"class": ["Mali", "Japan", "Peru", "Chile"], "support": [4, 3, 1, 5],
                              "recall": [0.75, 1.0, 1.0, 0.0]})
    text = findings.countries_sentence(per_class, top=2, min_support=2)
    assert "right most often for Japan (3/3), Mali (3/4)" in text
    assert "Peru" not in text.split(";")[0]  # one test track is too few to name
    assert "never right for 1 of 4 classes (Chile)" in text


def test_comparison_findings_says_which_intervals_overlap():
    metrics = pd.DataFrame([row("ensemble", 0.6, 0.5, 0.7, kind="ensemble", median_km=812.4, mean_km=2345.6),
                            row("fcnn", 0.55, 0.45, 0.65), row("attention", 0.3, 0.2, 0.4),
                            row("random_forest", 0.52, 0.42, 0.62, kind="baseline"),
                            row("majority", 0.4, 0.3, 0.5, kind="baseline")])
    text = findings.comparison_findings(metrics, FLOOR)
    assert "**ensemble**'s 60.0 % (50.0–70.0 %)" in text
    assert "overlaps those of fcnn, random_forest" in text
    assert "Clearly below it: attention" in text
    assert "5.0 points above the best single model (fcnn)" in text
    assert "median 812 km, mean 2,346 km" in text


def test_attention_caveat_places_the_model_below_the_baselines():
    metrics = pd.DataFrame([row("attention", 0.25, 0.18, 0.32), row("logreg", 0.45, 0.38, 0.52, kind="baseline"),
                            row("majority", 0.07, 0.03, 0.1, kind="baseline")])
    text = findings.attention_caveat(metrics)
    assert "25.0 %" in text and "below logreg" in text and "lie wholly above it" in text
    assert findings.attention_caveat(metrics[metrics["model"] != "attention"]) is None


def test_data_findings_reports_the_thinnest_test_classes():
    frame = pd.DataFrame({"label": ["A"] * 6 + ["B"] * 3 + ["C"] * 3})
    split = Split(fold=-1, train=np.array([0, 1, 2, 3, 6, 9]), val=np.array([4, 7]), test=np.array([5, 8, 10, 11]))
    text = findings.data_findings(frame, split)
    assert "12 tracks in 3 classes" in text and "6 / 2 / 4" in text
    assert "1 test track(s) (A, B)" in text
    equal = findings.data_findings(pd.DataFrame({"label": ["A"] * 4 + ["B"] * 4}),
                                   Split(fold=-1, train=np.arange(4), val=np.array([4, 5]), test=np.array([6, 7])))
    assert "8 tracks in 2 classes: every class has 4 tracks." in equal and "largest" not in equal


def test_feature_findings_counts_identical_copies():
    base = np.arange(12.0)
    features = pd.DataFrame({"a": base, "b": base, "c": base, "d": base[::-1], "e": base ** 2})
    groups = identical_column_groups(features)
    assert groups == [["a", "b", "c"]]
    assert "3 distinct columns" in findings.feature_findings(features)
    assert "No column is a copy" in findings.feature_findings(features[["a", "d", "e"]])


def test_showcase_is_chosen_on_validation_with_a_minimum_support():
    validation = pd.DataFrame({"class": ["Mali", "Japan", "Peru", "Chile"], "support": [4, 3, 1, 5],
                               "recall": [0.5, 1.0, 1.0, 0.2]})
    chosen = choose_showcase(validation, n=2, min_support=3)
    assert chosen.classes == ["Japan", "Mali"]  # Peru has one validation track only
    assert "13 validation tracks" in chosen.how and "at least 3" in chosen.how
    assert choose_showcase(validation, 2, 3, pinned=["Peru"]).classes == ["Peru"]
    assert choose_showcase(validation, 2, 3, present=["Mali", "Chile"]).classes == ["Mali", "Chile"]
    fallback = choose_showcase(validation, 1, 10)
    assert fallback.classes == ["Japan"] and "no class has enough" in fallback.how


def test_prediction_findings_count_the_shown_tracks():
    tracks = pd.DataFrame({"label": ["Mali", "Japan", "Mali", "Japan", "Peru"], "track_id": list("abcde")})
    rows = showcase_rows(tracks, ["Japan", "Mali"], per_class=1)
    assert rows["label"].tolist() == ["Japan", "Mali"]
    result = pd.DataFrame({"top1": ["Japan", "Chile"], "top2": ["Mali", "Mali"], "p1": [0.6, 0.5], "p2": [0.2, 0.3],
                           "region": ["East Asia", "South America"], "distance_aware": ["Japan", "Chile"]})
    showcase = choose_showcase(pd.DataFrame({"class": ["Japan", "Mali"], "support": [3, 3], "recall": [1.0, 0.6]}), 2, 3)
    text = prediction_findings(result, ["Japan", "Mali"], showcase, "fcnn")
    assert "first for 1 of 2" in text and "top 2 for 2" in text and "Missed at least once: Mali" in text
    table = compact_guesses(result, ["Japan", "Mali"])
    assert table["guesses (probability)"].iloc[1] == "Chile 0.50 · Mali 0.30"


def test_plan_findings_come_from_the_params():
    from geomusic_lib.core import Params

    params = Params(run_name="x", models=["fcnn", "cnn"], baselines=["majority"], seed=7)
    text = findings.plan_findings(params)
    assert "Run `x`" in text and "2 networks (fcnn, cnn)" in text and "seed 7" in text and "70 % / 10 % / 20 %" in text


@pytest.mark.parametrize("value, expected", [(0.4762, "47.6 %"), (float("nan"), "n/a")])
def test_pct(value, expected):
    assert findings.pct(value) == expected
