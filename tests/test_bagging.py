"""k-fold bagging (`train.bagging.folds`): members that never see their held-out fold, out-of-fold
rows for every training row, one self-contained bag checkpoint, the ensemble fitted on OOF rows,
and resume after an interruption that gives what a lone run gives."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from geomusic_lib.core import params_from_dict
from geomusic_lib.data import bag_splits, load_uci, make_splits, split_groups, TrackTable
from geomusic_lib.models import Bag
from geomusic_lib.predict import Predictor, read_predictions
from geomusic_lib.training import run_baselines, train_model
from geomusic_lib.training.bagging import bag_rows

FAST = {"epochs": 2, "batch_size": 128, "bagging": {"folds": 3}}


@pytest.fixture(scope="module")
def uci():
    table = load_uci()
    params = params_from_dict({"train": FAST, "device": "cpu", "model": {"fcnn": {"hidden": [16]}}})
    return table, make_splits(table.frame, params.split, params.seed), params


def grouped_table(n: int = 240, seed: int = 0) -> TrackTable:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"track_id": [f"t{i}" for i in range(n)], "label": rng.choice(list("abcd"), n),
                          "group": [f"artist{g}" for g in rng.integers(0, 60, n)], "lat": np.nan, "lon": np.nan,
                          "f0": rng.normal(size=n), "f1": rng.normal(size=n)})
    return TrackTable(frame, ["f0", "f1"], source="test")


def test_members_never_see_their_held_out_fold_and_groups_stay_whole():
    table = grouped_table()
    params = params_from_dict({"split": {"strategy": "kfold", "folds": 4}})
    groups = split_groups(table.frame)
    for split in make_splits(table.frame, params.split, 0):
        members = bag_splits(table.frame, split, 5, seed=0)
        rows = bag_rows(split)
        held = np.concatenate([m.val for m in members])
        assert sorted(held) == sorted(rows)  # every training row is out of fold exactly once
        for member in members:
            assert not set(member.train) & set(member.val) and not set(member.train) & set(split.test)
            assert sorted(np.r_[member.train, member.val]) == sorted(rows)
            assert not set(groups[member.train]) & set(groups[member.val])
            assert (member.test == split.test).all()
    assert bag_splits(table.frame, split, 1, seed=0) == [split]  # folds: 1 is today's single split


def test_a_bagged_network_writes_oof_rows_and_one_checkpoint_the_predictor_averages(tmp_path, uci):
    table, splits, params = uci
    out = tmp_path / "fcnn"
    result = train_model("fcnn", table, splits, params, out, progress=False)
    assert len(result.folds[0].members) == 3 and sorted(p.name for p in out.glob("bag_*")) == ["bag_0", "bag_1", "bag_2"]
    oof = read_predictions(out / "oof.parquet")
    assert sorted(oof.track_ids) == sorted(table.frame["track_id"].iloc[bag_rows(splits[0])])
    checkpoint = torch.load(out / "checkpoint_best.pt", weights_only=True)
    assert checkpoint["bag_size"] == 3 and len(checkpoint["bag_members"]) == 3
    predictor = Predictor.from_checkpoint(out / "checkpoint_best.pt", device="cpu")
    assert isinstance(predictor.model, Bag)
    test_rows = table.frame.iloc[splits[0].test]
    members = [Predictor.from_checkpoint(out / f"bag_{j}" / "checkpoint_best.pt", device="cpu") for j in range(3)]
    mean = np.mean([m.predict_proba(test_rows) for m in members], axis=0)
    np.testing.assert_allclose(predictor.predict_proba(test_rows), mean, atol=1e-6)
    np.testing.assert_allclose(read_predictions(out / "predictions.parquet").proba, mean, atol=1e-6)
    assert predictor.embed(test_rows.head(4)).shape[1] == 3 * members[0].embed(test_rows.head(4)).shape[1]


def test_members_trained_in_parallel_processes_equal_members_trained_one_at_a_time(tmp_path, uci):
    """train.bagging.jobs 2: two spawned workers; the same checkpoints, OOF and test probabilities."""
    table, splits, params = uci
    one = params.model_copy(update={"train": params.train.model_copy(update={"threads": 1})})
    two = one.model_copy(update={"train": one.train.model_copy(update={
        "bagging": one.train.bagging.model_copy(update={"jobs": 2})})})
    train_model("fcnn", table, splits, one, tmp_path / "one", progress=False)
    result = train_model("fcnn", table, splits, two, tmp_path / "two", progress=False)
    assert len(result.folds[0].members) == 3
    for name in ("oof.parquet", "predictions.parquet"):
        np.testing.assert_array_equal(read_predictions(tmp_path / "one" / name).proba,
                                      read_predictions(tmp_path / "two" / name).proba)
    fingerprints = {torch.load(tmp_path / run / "bag_1" / "checkpoint_last.pt", weights_only=True)["fingerprint"]
                    for run in ("one", "two")}
    assert len(fingerprints) == 1  # jobs change the speed, not the model: either run resumes the other


def test_an_interrupted_bag_resumes_to_what_a_lone_run_gives(tmp_path, uci):
    table, splits, params = uci
    lone = train_model("fcnn", table, splits, params, tmp_path / "lone", progress=False)

    def stop_in_the_second_member(fold: int, row: dict) -> None:
        if stop_in_the_second_member.calls == 3:  # member 0 ran 2 epochs; member 1 its first
            raise KeyboardInterrupt
        stop_in_the_second_member.calls += 1
    stop_in_the_second_member.calls = 0
    with pytest.raises(KeyboardInterrupt):
        train_model("fcnn", table, splits, params, tmp_path / "cut", progress=False, on_epoch=stop_in_the_second_member)
    assert not (tmp_path / "cut" / "oof.parquet").exists()
    train_model("fcnn", table, splits, params, tmp_path / "cut", progress=False)
    for name in ("oof.parquet", "predictions.parquet"):
        a, b = read_predictions(tmp_path / "lone" / name), read_predictions(tmp_path / "cut" / name)
        assert (a.track_ids == b.track_ids).all()
        np.testing.assert_allclose(a.proba, b.proba, atol=1e-6)
    assert lone.folds[0].members[1].epochs_run == 2


def test_bagged_baselines_write_oof_rows_from_members_that_left_them_out(tmp_path, uci):
    table, splits, params = uci
    written = run_baselines(table, splits, params, tmp_path, names=["logreg"], progress=False)
    oof = read_predictions(tmp_path / "logreg" / "oof.parquet")
    rows = bag_rows(splits[0])
    assert len(oof.track_ids) == len(rows) and written["logreg"].is_file()
    accuracy = (oof.proba.argmax(1) == oof.y_true).mean()
    refit = run_baselines(table, splits, params.model_copy(update={"train": params.train.model_copy(
        update={"bagging": params.train.bagging.model_copy(update={"folds": 1})})}), tmp_path / "one", names=["logreg"],
        progress=False)
    held_out = read_predictions(refit["logreg"].parent / "oof.parquet")  # unbagged: the validation rows
    ids = table.frame["track_id"].to_numpy()
    assert sorted(held_out.track_ids) == sorted(ids[splits[0].val])
    assert 0.2 < accuracy < 0.8  # out of fold: far below a fit's accuracy on its own rows


def test_bagging_is_one_setting_for_every_model():
    from geomusic_lib.core.params import ParamsError

    with pytest.raises(ParamsError) as err:
        params_from_dict({"train_per_model": {"fcnn": {"bagging": {"folds": 5}}}})
    assert "set train.bagging.folds" in str(err.value)


def test_the_ensemble_of_a_bagged_run_is_fitted_on_oof_rows_and_never_below_its_best_member(tmp_path):
    from geomusic_lib.core import RunDir
    from geomusic_lib.data import prepare_run_data
    from geomusic_lib.pipeline import stages
    from geomusic_lib.training.ensemble import objective_losses

    params = params_from_dict({"runs_dir": str(tmp_path), "run_name": "bag", "device": "cpu", "train": FAST,
                               "models": ["fcnn"], "baselines": ["majority", "logreg", "random_forest"],
                               "model": {"fcnn": {"hidden": [16]}},
                               "baseline_settings": {"random_forest": {"n_estimators": 20}}})
    run = RunDir(params.run_dir)
    _, splits = prepare_run_data(params, run)
    stages.train_network(params, run, "fcnn")
    stages.fit_baselines(params, run)
    fitted = stages.fit_ensemble(params, run)
    assert fitted[0].notes["rows"] == "out-of-fold rows"
    assert fitted[0].score <= min(fitted[0].member_scores.values()) + 1e-9
    oof = {m: read_predictions(run.oof(m)) for m in ("fcnn", "logreg", "random_forest")}
    y = oof["fcnn"].y_true
    loss, _ = objective_losses("log_loss")
    assert fitted[0].member_scores["logreg"] <= loss(oof["logreg"].proba, y) + 1e-9  # its temperature only helps
    assert len(y) == len(bag_rows(splits[0])) and read_predictions(run.predictions("ensemble")).proba.shape[0] == \
        len(splits[0].test)
