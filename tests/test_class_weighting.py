"""One class weighting for every model: `train.class_weights` reaches the networks' loss, every baseline
that can weigh classes, and the ensemble's objective; the ensemble never scores below its best member."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from geomusic_lib.core import params_from_dict
from geomusic_lib.core.params import ParamsError, WEIGHTED_BASELINES
from geomusic_lib.training import ensemble
from geomusic_lib.training.baselines import BASELINES, make_baseline


def final_step(estimator):
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


@pytest.mark.parametrize("weighted", [False, True])
def test_the_one_setting_reaches_networks_baselines_and_the_ensemble(weighted):
    params = params_from_dict({"train": {"class_weights": weighted}})
    assert all(params.for_model(name).train.class_weights is weighted for name in params.models)
    for name in BASELINES:
        estimator = final_step(make_baseline(name, 0, params.baseline_settings_for(name)))
        expected = "balanced" if weighted and name in WEIGHTED_BASELINES else None
        assert estimator.get_params().get("class_weight") == expected, name
    assert params.ensemble_objective() == ("balanced_log_loss" if weighted else "log_loss")


def test_a_weighted_forest_predicts_the_small_class_more_often():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(270, int), np.ones(30, int)]
    x = rng.normal(size=(300, 3)) + y[:, None] * 0.6
    counts = {}
    for weighted in (False, True):
        settings = params_from_dict({"train": {"class_weights": weighted}}).baseline_settings_for("logreg")
        fitted = make_baseline("logreg", 0, settings).fit(x, y)
        counts[weighted] = int((fitted.predict(x) == 1).sum())
    assert counts[True] > counts[False]


def test_class_weights_per_network_are_refused_with_the_key_to_set():
    with pytest.raises(ParamsError) as err:
        params_from_dict({"train_per_model": {"rnn": {"class_weights": True}}})
    assert "train_per_model.rnn.class_weights" in str(err.value) and "set train.class_weights" in str(err.value)


def test_the_balanced_losses_count_every_class_alike():
    y = np.array([0, 0, 0, 1])
    proba = np.array([[0.9, 0.1]] * 3 + [[0.9, 0.1]])
    assert ensemble.balanced_error(proba, y) == pytest.approx(0.5)  # recall 1 and 0
    assert ensemble.balanced_log_loss(proba, y) == pytest.approx((-np.log(0.9) - np.log(0.1)) / 2)
    assert ensemble.log_loss(proba, y) == pytest.approx((-3 * np.log(0.9) - np.log(0.1)) / 4)
    km = np.array([[0.0, 1000.0], [1000.0, 0.0]])
    assert ensemble.expected_km(km)(proba, y) == pytest.approx((3 * 100 + 900) / 4)


@pytest.mark.parametrize("objective", ["log_loss", "balanced_log_loss", "balanced_accuracy", "expected_km"])
def test_the_ensemble_never_scores_below_its_best_member_on_its_rows(objective):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 120)
    good = np.full((120, 4), 0.1)
    good[np.arange(120), y] = 0.7
    members = {"good": good, "noise": rng.dirichlet(np.ones(4), 120), "wrong": np.roll(good, 1, axis=1)}
    km = rng.uniform(100, 5000, (4, 4))
    fitted = ensemble.fit_ensemble(members, y, objective=objective, class_km=(km + km.T) * (1 - np.eye(4)))
    assert fitted.objective == objective and set(fitted.member_scores) == set(members)
    assert fitted.score <= min(fitted.member_scores.values()) + 1e-9


def test_a_mixture_worse_than_its_best_member_becomes_that_member(monkeypatch):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 90)
    good = np.full((90, 3), 0.05)
    good[np.arange(90), y] = 0.9
    members = {"good": good, "wrong": np.roll(good, 1, axis=1)}
    monkeypatch.setattr(ensemble, "fit_weights", lambda probas, y, steps, loss: np.array([0.4, 0.6]))
    fitted = ensemble.fit_ensemble(members, y, objective="balanced_accuracy", calibrate_members=False)
    assert fitted.fallback == "good" and fitted.weights == [1.0, 0.0]
    assert fitted.score == pytest.approx(fitted.member_scores["good"])
    assert "good alone" in fitted.describe()
    np.testing.assert_allclose(fitted.predict(members), ensemble.apply_temperature(good, fitted.temperatures[0]))
