"""Issue 13's training pieces: TabM through the trainer and a `weights_only` checkpoint, views
chosen from the data, haversine soft targets, the thread choice and the per-epoch callback."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from geomusic_lib.data import geo_soft_targets, load_uci, make_splits
from geomusic_lib.models import build_model
from geomusic_lib.core import choose_threads, macs_per_row, params_from_dict, SMALL_MODEL_MACS, torch_threads
from geomusic_lib.predict import Predictor, read_predictions
from geomusic_lib.training import model_view, train_model

TINY_TABM = {"k": 4, "n_blocks": 1, "d_block": 32, "n_bins": 8, "d_embedding": 4}


@pytest.fixture(scope="module")
def uci68():
    table = load_uci(chromatic=False)
    return table, make_splits(table.frame, params_from_dict({}).split, seed=0)


def _params(**extra):
    return params_from_dict({"device": "cpu", "model": {"tabm": TINY_TABM},
                             "train": {"epochs": 2, "batch_size": 128, "threads": 1, "bagging": {"folds": 1},  # one model per split
                                       **extra.pop("train", {})},
                             **extra})


def test_tabm_checkpoint_loads_with_weights_only_and_predicts_as_trained(uci68, tmp_path):
    table, splits = uci68
    result = train_model("tabm", table, splits, _params(), tmp_path / "tabm", progress=False)
    raw = torch.load(result.folds[0].checkpoint, weights_only=True)
    bins = raw["model_config"]["bins"]
    assert raw["model_name"] == "tabm" and raw["view"] == "vector" and len(bins) == 68
    assert all(isinstance(edge, float) for edges in bins for edge in edges)
    assert raw["params"]["train_per_model"]["tabm"] == {"lr": 0.002, "weight_decay": 0.0003, "batch_size": 256}
    predictor = Predictor.from_dict(raw, device="cpu")
    rows = table.frame.iloc[splits[0].test]
    stored = read_predictions(result.predictions)
    np.testing.assert_allclose(predictor.predict_proba(rows[["track_id", *table.feature_names]]), stored.proba,
                               atol=1e-5)
    assert predictor.embed(rows[table.feature_names]).shape == (len(rows), TINY_TABM["d_block"])


def test_tabm_train_accuracy_is_the_mean_over_its_members_not_their_sum(tmp_path):
    from geomusic_lib.data import TrackTable

    rng = np.random.default_rng(0)
    label = np.repeat(["A", "B"], 100)
    frame = pd.DataFrame({"track_id": [f"t{i}" for i in range(200)], "label": label, "group": pd.NA,
                          "lat": 0.0, "lon": 0.0, "f0": np.where(label == "A", -3.0, 3.0) + rng.normal(0, 0.1, 200),
                          "f1": rng.normal(size=200)})
    table = TrackTable(frame, ["f0", "f1"], source="table")
    splits = make_splits(frame, params_from_dict({}).split, seed=0)
    params = _params(train={"epochs": 12, "lr": 0.01, "batch_size": 32, "patience": 12})
    train_model("tabm", table, splits, params, tmp_path / "tabm", progress=False)
    history = pd.read_csv(tmp_path / "tabm" / "history.csv")
    assert history["train_accuracy"].iloc[-1] > 0.6 and history["train_accuracy"].le(1.0).all()


def test_tabm_bins_come_from_the_training_rows_only(uci68, tmp_path):
    table, splits = uci68
    train_model("tabm", table, splits, _params(), tmp_path / "tabm", progress=False)
    raw = torch.load(tmp_path / "tabm" / "checkpoint_best.pt", weights_only=True)
    x = table.features[splits[0].train]
    z = (x - np.asarray(raw["norm_mean"])) / np.asarray(raw["norm_std"])
    first = raw["model_config"]["bins"][0]
    assert first[0] == pytest.approx(z[:, 0].min(), abs=1e-4) and first[-1] == pytest.approx(z[:, 0].max(), abs=1e-4)


def test_view_auto_is_the_grid_only_where_the_source_has_one():
    params = params_from_dict({})
    assert params.model.cnn.view == params.model.rnn.view == params.model.attention.view == "auto"
    assert model_view("cnn", params, (4, 29)) == "grid" and model_view("rnn", params, (4, 29)) == "grid_sequence"
    assert model_view("cnn", params, None) == "tokens" and model_view("attention", params, None) == "tokens"
    assert model_view("tabm", params, None) == "vector"
    fixed = params_from_dict({"model": {"rnn": {"view": "tokens"}}})
    assert model_view("rnn", fixed, (4, 29)) == "tokens"


def test_geo_soft_targets_weigh_near_classes_and_sum_to_one():
    lat, lon = [0.0, 0.0, 60.0, float("nan")], [0.0, 5.0, 100.0, 0.0]
    targets = geo_soft_targets(lat, lon, tau_km=500)
    np.testing.assert_allclose(targets.sum(1), 1.0)
    assert targets[0, 1] > 0.2 and targets[0, 2] < 1e-6  # 556 km apart vs thousands
    assert targets[3].tolist() == [0.0, 0.0, 0.0, 1.0] and (targets[:3, 3] == 0).all()
    with pytest.raises(ValueError, match="geo_smoothing_km must be positive"):
        geo_soft_targets(lat, lon, 0)


def test_geo_smoothing_trains_and_changes_the_model(uci68, tmp_path):
    table, splits = uci68
    plain = train_model("fcnn", table, splits, _params(), tmp_path / "plain", progress=False)
    smooth = train_model("fcnn", table, splits, _params(train={"geo_smoothing_km": 1000}), tmp_path / "geo",
                         progress=False)
    a, b = read_predictions(plain.predictions).proba, read_predictions(smooth.predictions).proba
    assert np.isfinite(b).all() and not np.allclose(a, b)


def test_threads_auto_gives_small_models_one_thread():
    fcnn = build_model("fcnn", {"in_features": 116, "n_classes": 33, "hidden": [64]})
    assert macs_per_row(fcnn, torch.zeros(1, 116)) < SMALL_MODEL_MACS
    assert choose_threads("auto", fcnn, torch.zeros(1, 116)) == 1 and choose_threads(3, fcnn, None) == 3
    big = build_model("fcnn", {"in_features": 2048, "n_classes": 33, "hidden": [4096, 2048]})
    assert macs_per_row(big, torch.zeros(1, 2048)) > SMALL_MODEL_MACS
    assert choose_threads("auto", big, torch.zeros(1, 2048)) >= 1
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(Exception, match="threads"):
        params_from_dict({"train": {"threads": 0}})


def test_on_epoch_sees_every_epoch_and_can_stop_training(uci68, tmp_path):
    table, splits = uci68
    seen = []
    train_model("fcnn", table, splits, _params(), tmp_path / "a", progress=False,
                on_epoch=lambda fold, row: seen.append((fold, row["epoch"], row["val_loss"])))
    assert [(f, e) for f, e, _ in seen] == [(-1, 1), (-1, 2)] and all(np.isfinite(v) for *_, v in seen)

    class Stop(Exception):
        pass

    def stop(fold, row):
        raise Stop()
    with pytest.raises(Stop):
        train_model("fcnn", table, splits, _params(), tmp_path / "b", progress=False, on_epoch=stop)


def test_tabm_is_explained_by_shap_and_embedded_like_any_tabular_network(uci68, tmp_path):
    from geomusic_lib.evaluation import interpret

    table, splits = uci68
    result = train_model("tabm", table, splits, _params(), tmp_path / "tabm", progress=False)
    predictor = Predictor.from_checkpoint(result.folds[0].checkpoint, device="cpu")
    batch = predictor.prepare(table.frame[table.feature_names])
    values = interpret.shap_values_torch(predictor.model, batch.x[:8], batch.x[8:12], predictor.feature_names,
                                         predictor.view, nsamples=4)
    assert values.shape == (4, 68, len(predictor.classes)) and np.isfinite(values).all()
    assert interpret.embeddings(predictor.model, batch.x[:5]).shape == (5, TINY_TABM["d_block"])
