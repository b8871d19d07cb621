"""SHAP, attention maps and t-SNE on small models trained with the real trainer on UCI."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from geomusic_lib.evaluation import interpret, per_class_metrics
from geomusic_lib.data import region_of, Split
from geomusic_lib.predict import Predictor, read_predictions
from geomusic_lib.core import RunDir
from test_predict import train_tiny


def regions_of(countries) -> np.ndarray:
    return np.array([region_of(c) for c in countries])


@pytest.fixture(scope="module")
def fcnn(tmp_path_factory):
    ckpt, table, splits = train_tiny(tmp_path_factory.mktemp("fcnn"), "fcnn", epochs=3)
    return Predictor.from_checkpoint(ckpt, device="cpu"), table, splits[0], ckpt


@pytest.fixture(scope="module")
def attention_run(tmp_path_factory):
    """A run folder whose `models/attention/` holds a trained attention model (holdout split)."""
    run = RunDir(tmp_path_factory.mktemp("attention"))
    ckpt, table, splits = train_tiny(run.path, "attention", epochs=1)
    assert ckpt == run.checkpoint("attention")
    return run, table, splits[0]


@pytest.fixture(scope="module")
def attention(attention_run):
    run, table, split = attention_run
    return Predictor.from_checkpoint(run.checkpoint("attention"), device="cpu"), table, split


def test_shap_on_a_trained_fcnn_gives_one_value_per_feature(fcnn):
    predictor, table, split, _ = fcnn
    batch = predictor.prepare(table.frame)
    background, explain = batch.x[split.train[:32]], batch.x[split.test[:20]]
    values = interpret.shap_values_torch(predictor.model, background, explain, predictor.feature_names, nsamples=50)
    importance = interpret.global_importance(values, predictor.feature_names)
    assert sorted(importance["feature"]) == sorted(predictor.feature_names)
    assert len(importance) == 68 and np.isfinite(importance["importance"]).all()
    assert (importance["importance"] >= 0).all() and importance["importance"].iloc[0] > 0
    assert importance["importance"].is_monotonic_decreasing


def test_per_class_importance_for_the_most_distinctive_countries(fcnn):
    predictor, table, split, ckpt = fcnn
    batch = predictor.prepare(table.frame)
    values = interpret.shap_values_torch(predictor.model, batch.x[split.train[:16]], batch.x[split.test[:10]],
                                         predictor.feature_names, nsamples=20)
    assert values.shape == (10, 68, len(predictor.classes))
    pred = read_predictions(ckpt.parent / "predictions.parquet")
    classes_df = pd.DataFrame({"class": pred.classes, "lat": 0.0, "lon": 0.0, "region": "", "continent": ""})
    per_class = per_class_metrics(pred, classes_df)
    table_ = interpret.per_class_importance(values, predictor.feature_names, predictor.classes, per_class, top_n=3)
    assert table_.shape == (68, 3)
    assert list(table_.columns) == interpret.distinctive_classes(per_class, 3)
    best = per_class.sort_values("recall", ascending=False)["recall"].iloc[0]
    assert per_class.set_index("class").loc[table_.columns[0], "recall"] == best


class OneFeature(nn.Module):
    """Logits depend on a single position (step w, channel h) of a (N, W, H) input."""

    def __init__(self, w: int, h: int):
        super().__init__()
        self.w, self.h = w, h
        self.scale = nn.Parameter(torch.tensor(3.0))

    def forward(self, x, mask=None):
        v = x[:, self.w, self.h] * self.scale
        return torch.stack([v, -v, torch.zeros_like(v)], dim=1)


def test_shap_maps_grid_sequence_positions_back_to_feature_names():
    h_stats, w_desc = 2, 3  # grid (H=2 statistics, W=3 descriptors) → steps (N, W, H)
    names = [f"s{h}_d{w}" for h in range(h_stats) for w in range(w_desc)]  # row-major grid order
    x = torch.randn(40, w_desc, h_stats)
    values = interpret.shap_values_torch(OneFeature(w=2, h=1), x[:20], x[20:], names, view="grid_sequence",
                                         grid_shape=(h_stats, w_desc), nsamples=30)
    importance = interpret.global_importance(values, names)
    assert importance["feature"].iloc[0] == "s1_d2"
    assert importance["importance"].iloc[1:].max() == 0


def test_view_feature_index_and_step_names():
    names = [f"s{h}_timbre{w:02d}" for h in range(1, 5) for w in range(1, 18)]
    index = interpret.view_feature_index("grid_sequence", 68, (4, 17))
    assert index.shape == (17, 4) and index[16, 3] == 3 * 17 + 16
    assert interpret.step_names("grid_sequence", names, (4, 17))[:2] == ["timbre01", "timbre02"]
    assert interpret.step_names("tokens", names)[:1] == ["s1_timbre01"]
    assert interpret.view_feature_index("vector", 5).tolist() == [0, 1, 2, 3, 4]


def test_tree_shap_gives_one_value_per_feature(fcnn):
    _, table, split, _ = fcnn
    x, y = table.features[split.train], table.frame["label"].to_numpy()[split.train]
    forest = RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0).fit(x, y)
    importance = interpret.shap_importance_tree(forest, table.features[split.test[:15]], table.feature_names)
    assert len(importance) == 68 and importance["importance"].iloc[0] > 0
    pipeline = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0))
    pipeline.fit(x, y)
    values = interpret.shap_values_tree(pipeline, table.features[split.test[:5]], table.feature_names)
    assert values.shape == (5, 68, len(np.unique(y)))


def test_attention_maps_have_one_row_per_region_and_one_column_per_step(attention):
    predictor, table, split = attention
    assert predictor.view == "grid_sequence"
    rows = split.test[:60]
    batch = predictor.prepare(table.frame.iloc[rows])
    regions = regions_of(table.frame["label"].to_numpy()[rows])
    steps = interpret.step_names(predictor.view, predictor.feature_names, predictor.grid_shape)
    maps = interpret.attention_by_region(predictor.model, batch.x, batch.mask, regions, steps)
    assert maps.shape == (len(set(regions)), 17)
    assert list(maps.columns) == steps and list(maps.index) == sorted(set(regions))
    np.testing.assert_allclose(maps.sum(axis=1), 1, atol=1e-5)  # each track's weights sum to 1


def test_attention_needs_an_attention_model(fcnn):
    predictor, table, split, _ = fcnn
    batch = predictor.prepare(table.frame.iloc[:4])
    with pytest.raises(TypeError):
        interpret.attention_by_region(predictor.model, batch.x, None, ["a"] * 4)


def test_tsne_of_embeddings_is_coloured_by_region_with_countries(attention):
    predictor, table, _ = attention
    batch = predictor.prepare(table.frame)
    regions = regions_of(table.frame["label"].to_numpy())
    frame = interpret.tsne_embeddings(predictor.model, batch.x, table.frame["label"].to_numpy(), regions,
                                      mask=batch.mask, n=50, seed=1)
    assert len(frame) == 50 and {"x", "y", "country", "region"} <= set(frame.columns)
    assert np.isfinite(frame[["x", "y"]].to_numpy()).all()
    assert (frame["country"].to_numpy() == table.frame["label"].to_numpy()[frame["row"]]).all()
    again = interpret.tsne_embeddings(predictor.model, batch.x, table.frame["label"].to_numpy(), regions,
                                      mask=batch.mask, n=50, seed=1)
    np.testing.assert_allclose(frame[["x", "y"]], again[["x", "y"]])


def test_expected_gradients_agree_with_shap_gradient_explainer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    x = torch.randn(60, 5)
    names = list("abcde")
    ours = interpret.shap_values_torch(model, x[:40], x[40:46], names, nsamples=3000, seed=0)
    theirs = interpret.shap_values_torch(model, x[:40], x[40:46], names, nsamples=3000, seed=0,
                                         method="gradient_explainer")
    assert ours.shape == theirs.shape == (6, 5, 3)
    scale = np.abs(theirs).mean()
    assert np.abs(ours - theirs).mean() < 0.1 * scale
    # local accuracy: SHAP values add up to f(x) - E[f(background)] (up to Monte-Carlo error)
    with torch.no_grad():
        gap = torch.softmax(model(x[40:46]), 1) - torch.softmax(model(x[:40]), 1).mean(0)
    np.testing.assert_allclose(ours.sum(axis=1), gap.numpy(), atol=0.1 * np.abs(gap.numpy()).max())


def test_sample_split_draws_seeded_rows_from_the_named_part_only():
    split = Split(fold=-1, train=np.arange(0, 100), val=np.arange(100, 120), test=np.arange(120, 160))
    rows = interpret.sample_split(split, 10, seed=3, part="test")
    assert len(rows) == 10 and set(rows) <= set(split.test) and len(set(rows)) == 10
    assert (rows == interpret.sample_split(split, 10, seed=3)).all()  # "test" by default, and seeded
    assert not (rows == interpret.sample_split(split, 10, seed=4)).all()
    assert set(interpret.sample_split(split, 5, seed=3, part="train")) <= set(split.train)
    assert (interpret.sample_split(split, 500, seed=3, part="val") == split.val).all()  # n above the part: all of it
    with pytest.raises(ValueError, match="part"):
        interpret.sample_split(split, 5, seed=3, part="validation")


def test_attention_model_is_none_when_the_run_trained_none(tmp_path):
    assert interpret.attention_model(RunDir(tmp_path), fold=-1, device="cpu") is None


def test_attention_model_and_its_maps_from_a_run_folder(attention_run):
    run, table, split = attention_run
    predictor = interpret.attention_model(run, split.fold, device="cpu")
    assert predictor is not None and predictor.model_name == "attention"
    assert interpret.attention_model(run, fold=0, device="cpu") is None  # no fold 0 in a holdout run
    rows = table.frame.iloc[split.test[:40]]
    maps = interpret.track_attention_by_region(predictor, rows, regions_of(rows["label"]), run.features_dir)
    assert list(maps.columns) == interpret.step_names(predictor.view, predictor.feature_names, predictor.grid_shape)
    assert list(maps.index) == sorted(set(regions_of(rows["label"])))
    np.testing.assert_allclose(maps.sum(axis=1), 1, atol=1e-5)


def test_importance_by_family_adds_up_the_columns_of_each_family():
    chroma = [f"s2_chroma{d:02d}" for d in range(1, 13)]
    importance = pd.DataFrame({"feature": ["s1_timbre01", "s1_timbre02", "s1_timbre04", "s3_timbre06", *chroma],
                               "importance": [0.5, 1.0, 2.0, 0.5, *[0.25] * 12]})
    table = interpret.importance_by_family(importance).set_index("family")
    assert table.index.tolist() == ["spectral shape", "chroma", "zero crossings", "MFCC"]
    assert table.loc["chroma", "importance"] == pytest.approx(3.0) and table.loc["chroma", "n_features"] == 12
    assert table.loc["spectral shape", "per_feature"] == pytest.approx(1.5)
    assert table["share"].sum() == pytest.approx(1.0)
    groups = interpret.importance_by_family(importance, level="group").set_index("group")
    assert groups.loc["timbral", "importance"] == pytest.approx(4.0) and groups.loc["tonal", "share"] == pytest.approx(3 / 7)
    own = pd.Series(["a", "b"], index=["f1", "f2"])
    mine = interpret.importance_by_family(pd.DataFrame({"feature": ["f1", "f2"], "importance": [1.0, 3.0]}),
                                          families=own)
    assert mine["family"].tolist() == ["b", "a"]
    with pytest.raises(ValueError, match="f3"):
        interpret.importance_by_family(pd.DataFrame({"feature": ["f3"], "importance": [1.0]}), families=own)
