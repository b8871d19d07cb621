"""Temperature scaling and validation-fitted probability ensembles."""
from __future__ import annotations

import numpy as np
import pytest

from geomusic_lib.training import (
    apply_temperature,
    combine,
    fit_ensemble,
    fit_temperature,
    fit_weights,
    log_loss,
)
from geomusic_lib.core import RunDir
from geomusic_lib.pipeline import fit_ensemble as ensemble_stage, run_ensemble


def _overconfident(n: int = 600, k: int = 5, seed: int = 0):
    """Labels drawn from softmax(z); the 'model' reports softmax(3 z), i.e. temperature 1/3."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 1.5
    true_p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in true_p])
    sharp = np.exp(3 * z) / np.exp(3 * z).sum(1, keepdims=True)
    return sharp, true_p, y


def test_temperature_keeps_the_argmax_and_recovers_the_true_scale():
    sharp, true_p, y = _overconfident()
    t = fit_temperature(sharp, y)
    assert 2.3 < t < 3.9  # the true temperature is 3
    calibrated = apply_temperature(sharp, t)
    np.testing.assert_allclose(calibrated.sum(1), 1.0)
    assert (calibrated.argmax(1) == sharp.argmax(1)).all()
    assert log_loss(calibrated, y) < log_loss(sharp, y)
    np.testing.assert_allclose(apply_temperature(true_p, 1.0), true_p, atol=1e-9)
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(sharp, 0.0)


def test_zero_probabilities_give_a_finite_loss():
    proba = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert np.isfinite(log_loss(proba, np.array([1, 1])))
    assert np.isfinite(apply_temperature(proba, 2.0)).all()


def test_weights_prefer_the_informative_member_and_ignore_noise():
    _, good, y = _overconfident(seed=1)
    rng = np.random.default_rng(2)
    noise = rng.dirichlet(np.ones(good.shape[1]), size=len(y))
    w = fit_weights([noise, good], y)
    assert w.sum() == pytest.approx(1.0)
    assert w[1] > 0.8
    np.testing.assert_allclose(combine([noise, good], [0, 1]), good)
    with pytest.raises(ValueError, match="one weight per member"):
        combine([good], [0.5, 0.5])


def test_fitted_ensemble_predicts_calibrated_probabilities_on_new_rows():
    sharp, _, y = _overconfident(n=1200, seed=3)
    val, test = slice(0, 600), slice(600, None)
    members = {"a": sharp, "b": np.roll(sharp, 1, axis=1)}  # "b" is systematically wrong
    ens = fit_ensemble({m: p[val] for m, p in members.items()}, y[val])
    assert ens.members == ["a", "b"]
    assert ens.weights[0] > ens.weights[1]
    p_test = ens.predict({m: p[test] for m, p in members.items()})
    np.testing.assert_allclose(p_test.sum(1), 1.0)
    assert log_loss(p_test, y[test]) < log_loss(sharp[test], y[test])
    assert "a" in ens.describe()
    with pytest.raises(KeyError, match="missing"):
        ens.predict({"a": sharp[test]})


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A run directory with a briefly trained FCNN and three baselines on the 68-feature UCI set."""
    from types import SimpleNamespace

    from geomusic_lib.training import run_baselines
    from geomusic_lib.data import load_uci, make_splits
    from geomusic_lib.core import params_from_dict
    from geomusic_lib.training import train_model

    run_dir = tmp_path_factory.mktemp("run")
    params = params_from_dict({"train": {"epochs": 4, "batch_size": 64, "bagging": {"folds": 1}}, "model": {"fcnn": {"hidden": [32]}},
                               "device": "cpu", "models": ["fcnn"], "baselines": ["majority", "logreg", "knn"]})
    table = load_uci(chromatic=False)
    splits = make_splits(table.frame, params.split, params.seed)
    train_model("fcnn", table, splits, params, RunDir(run_dir).model_dir("fcnn"), progress=False)
    run_baselines(table, splits, params, RunDir(run_dir).models_dir, names=["majority", "logreg", "knn"], progress=False)
    return RunDir(run_dir), SimpleNamespace(table=table, splits=splits), params


def test_run_ensemble_writes_calibrated_test_predictions_fitted_on_validation_rows(small_run):
    import json

    from geomusic_lib.evaluation import model_kind
    from geomusic_lib.predict import read_predictions

    run, data, params = small_run
    fitted = run_ensemble(run, data, params)
    assert len(fitted) == len(data.splits) == 1
    assert sorted(fitted[0].members) == ["fcnn", "knn", "logreg"]  # majority carries no information
    assert abs(sum(fitted[0].weights) - 1) < 1e-9
    pred = read_predictions(run.predictions("ensemble"))
    test_ids = data.table.frame["track_id"].iloc[data.splits[0].test].tolist()
    assert pred.track_ids.tolist() == test_ids
    assert np.allclose(pred.proba.sum(axis=1), 1)
    majority = read_predictions(run.predictions("majority"))
    assert (pred.proba.argmax(1) == pred.y_true).mean() > (majority.proba.argmax(1) == majority.y_true).mean() + 0.1
    assert model_kind(run.model_dir("ensemble")) == "ensemble"
    stored = json.loads((run.model_dir("ensemble") / "ensemble.json").read_text())
    assert stored[0]["weights"] == fitted[0].weights


def test_run_ensemble_names_a_member_without_predictions(small_run):
    run, data, params = small_run
    with pytest.raises(FileNotFoundError, match="svm"):
        run_ensemble(run, data, params, members=["fcnn", "svm"])


def test_run_ensemble_refuses_a_member_trained_on_another_split(small_run):
    from types import SimpleNamespace

    from geomusic_lib.data import make_splits

    run, data, params = small_run
    other = params.model_copy(update={"seed": params.seed + 1})
    moved = SimpleNamespace(table=data.table, splits=make_splits(data.table.frame, other.split, other.seed))
    with pytest.raises(ValueError, match="held-out tracks of fold -1 have no stored prediction.*rerun fcnn"):
        run_ensemble(run, moved, other, members=["fcnn"])


def test_run_ensemble_reads_only_the_files_its_members_wrote(small_run, monkeypatch):
    """No checkpoint is loaded and no baseline refitted: the members' oof.parquet and predictions.parquet suffice."""
    import geomusic_lib.models.checkpoint as checkpoint
    import geomusic_lib.training.baselines as baselines
    from geomusic_lib.predict import read_predictions

    def refuse(*args, **kwargs):
        raise AssertionError("the ensemble reloaded a checkpoint or refitted a baseline")

    monkeypatch.setattr(checkpoint, "load_checkpoint", refuse)
    monkeypatch.setattr(baselines, "fit_baseline", refuse)
    run, data, params = small_run
    fitted = run_ensemble(run, data, params, members=["fcnn", "logreg"])
    held_out = read_predictions(run.oof("fcnn"))  # unbagged: the validation rows
    assert sorted(held_out.track_ids) == sorted(data.table.frame["track_id"].iloc[data.splits[0].val])
    assert fitted[0].notes["rows"] == "validation rows"
    assert fitted[0].score <= min(fitted[0].member_scores.values()) + 1e-9


def test_ensemble_stage_removes_a_stale_ensemble_when_switched_off(small_run, capsys):
    run, data, params = small_run
    assert ensemble_stage(params, run, data)
    assert "holdout split:" in capsys.readouterr().out
    off = params.model_copy(update={"evaluate": params.evaluate.model_copy(update={"ensemble": False})})
    assert ensemble_stage(off, run, data) == []
    assert not run.model_dir("ensemble").exists()
    assert "evaluate.ensemble is false" in capsys.readouterr().out
