"""Baselines run on exactly the neural models' folds; the distance-aware decision."""
from __future__ import annotations

import numpy as np
import pytest

from geomusic_lib.training import run_baselines, train_model
from geomusic_lib.data import load_uci, make_splits
from geomusic_lib.predict import distance_aware_predict, expected_distance_km, read_predictions
from geomusic_lib.core import params_from_dict


@pytest.fixture(scope="module")
def uci_kfold():
    table = load_uci()
    table.frame = table.frame.iloc[::3].reset_index(drop=True)  # 353 real tracks keep the test fast
    params = params_from_dict({"device": "cpu", "seed": 1, "split": {"strategy": "kfold", "folds": 3},
                               "train": {"epochs": 1}, "model": {"fcnn": {"hidden": [16]}}})
    return table, make_splits(table.frame, params.split, params.seed), params


def test_baselines_are_evaluated_on_the_identical_folds(uci_kfold, tmp_path):
    table, splits, params = uci_kfold
    written = run_baselines(table, splits, params, tmp_path, names=["majority", "logreg"], progress=False)
    net = read_predictions(train_model("fcnn", table, splits, params, tmp_path / "fcnn", progress=False).predictions)
    expected = {(tid, s.fold) for s in splits for tid in table.frame["track_id"].iloc[s.test]}
    assert {(t, int(f)) for t, f in zip(net.track_ids, net.fold)} == expected
    for name, path in written.items():
        pred = read_predictions(path)
        assert {(t, int(f)) for t, f in zip(pred.track_ids, pred.fold)} == expected, name
        assert pred.classes == table.classes()
        np.testing.assert_allclose(pred.proba.sum(1), 1.0, rtol=1e-6)
    logreg = read_predictions(written["logreg"])
    assert (logreg.proba.argmax(1) == logreg.y_true).mean() > 0.2


def test_unknown_baseline_names_the_choices(uci_kfold, tmp_path):
    table, splits, params = uci_kfold
    with pytest.raises(ValueError, match="unknown baseline 'xgboost'.*hist_gb.*logreg.*majority.*random_forest"):
        run_baselines(table, splits, params, tmp_path, names=["xgboost"], progress=False)


def test_distance_aware_decision_hedges_between_far_apart_classes():
    # Lisbon, Rome, Istanbul on one parallel-ish line: 45 % Lisbon, 45 % Istanbul, 10 % Rome.
    lat, lon = np.array([38.7, 41.9, 41.0]), np.array([-9.1, 12.5, 29.0])
    proba = np.array([[0.45, 0.10, 0.45], [0.0, 0.0, 1.0]])
    assert distance_aware_predict(proba, lat, lon).tolist() == [1, 2]
    assert proba.argmax(1).tolist()[1] == 2
    assert expected_distance_km(proba, lat, lon)[1, 2] == 0
    with pytest.raises(ValueError, match="coordinates for every class"):
        distance_aware_predict(proba, np.array([1.0, np.nan, 2.0]), lon)


def test_svm_and_knn_baselines_give_probabilities_on_the_same_folds(uci_kfold, tmp_path):
    table, splits, params = uci_kfold
    written = run_baselines(table, splits, params, tmp_path, names=["svm", "knn"], progress=False)
    for name, path in written.items():
        pred = read_predictions(path)
        assert len(pred.track_ids) == len(table.frame)
        np.testing.assert_allclose(pred.proba.sum(1), 1.0, rtol=1e-6)
        assert (pred.proba.argmax(1) == pred.y_true).mean() > 0.15, name
    assert params_from_dict({"baselines": ["svm", "knn"]}).baselines == ["svm", "knn"]
