import numpy as np
import pytest

from geomusic_lib.data import DataError, load_dataset, load_uci, make_splits, make_view, Normalizer
from geomusic_lib.data import LABEL_NOTE, collapse_chroma_copies
from geomusic_lib.core import ParamsError, SplitParams, params_from_dict


def test_uci_loader_returns_1059_tracks_and_33_classes():
    table = load_uci(collapse_chroma=False)
    assert len(table.frame) == 1059
    assert table.frame["label"].nunique() == 33
    assert len(table.feature_names) == 116
    assert table.grid_shape == (4, 29)
    assert "derived" in LABEL_NOTE and table.notes["label_note"] == LABEL_NOTE


def test_the_file_holds_72_distinct_columns_and_the_collapsed_table_keeps_each_once():
    full, collapsed = load_uci(collapse_chroma=False), load_uci()
    distinct = {tuple(col) for col in full.features.T}
    assert len(distinct) == 72 and collapsed.features.shape == (1059, 72) and collapsed.grid_shape == (4, 18)
    assert len({tuple(col) for col in collapsed.features.T}) == 72  # nothing distinct was dropped
    for stat in range(1, 5):
        np.testing.assert_array_equal(collapsed.frame[f"s{stat}_chroma"], full.frame[f"s{stat}_chroma07"])
    assert collapsed.feature_names[17] == "s1_chroma" and "collapsed" in collapsed.notes["chroma_note"]


def test_distinct_chroma_columns_are_not_collapsed():
    features = load_uci(collapse_chroma=False).frame[load_uci(collapse_chroma=False).feature_names].copy()
    features["s2_chroma05"] += 0.5
    with pytest.raises(DataError, match="s2_chroma05.*collapse_chroma: false"):
        collapse_chroma_copies(features, "my.txt")


def test_params_choose_whether_chroma_is_collapsed():
    kept = load_dataset(params_from_dict({"data": {"uci": {"collapse_chroma": False}}}))
    assert len(load_dataset(params_from_dict({})).feature_names) == 72 and len(kept.feature_names) == 116
    with pytest.raises(ParamsError, match="collapse_chroma"):
        params_from_dict({"data": {"uci": {"collapse_chroma": "sometimes"}}}, source="x.yaml")


def test_uci_68_features_are_the_timbral_part_of_the_116():
    full, small = load_uci(True, collapse_chroma=False), load_uci(False)
    assert len(small.feature_names) == 68
    np.testing.assert_allclose(full.frame[small.feature_names].to_numpy(), small.frame[small.feature_names].to_numpy())


def test_uci_labels_match_coordinates():
    frame = load_uci().frame
    india = frame[frame["label"] == "India"]
    assert len(india) == 69
    assert set(india["lat"].round(2)) == {28.61} and set(india["lon"].round(2)) == {77.2}


def test_holdout_split_is_70_10_20_and_disjoint():
    table = load_uci()
    (split,) = make_splits(table.frame, SplitParams(), seed=1)
    n = len(table.frame)
    assert abs(len(split.test) / n - 0.2) < 0.03 and abs(len(split.val) / n - 0.1) < 0.03
    parts = [set(split.train), set(split.val), set(split.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sum(map(len, parts)) == n


def test_splits_are_seeded():
    frame = load_uci().frame
    a = make_splits(frame, SplitParams(), seed=3)[0]
    b = make_splits(frame, SplitParams(), seed=3)[0]
    c = make_splits(frame, SplitParams(), seed=4)[0]
    assert np.array_equal(a.test, b.test) and not np.array_equal(a.test, c.test)


def test_kfold_test_folds_partition_the_data():
    frame = load_uci().frame
    splits = make_splits(frame, SplitParams(strategy="kfold", folds=5), seed=0)
    tests = np.concatenate([s.test for s in splits])
    assert len(splits) == 5 and sorted(tests.tolist()) == list(range(len(frame)))
    for s in splits:
        assert not set(s.train) & set(s.test) and not set(s.val) & set(s.test)


def test_grid_views_follow_the_statistics_by_descriptor_layout():
    table = load_uci(collapse_chroma=False)
    x = table.features[:3]
    grid = make_view("grid", x, grid_shape=table.grid_shape).x
    seq = make_view("grid_sequence", x, grid_shape=table.grid_shape).x
    assert grid.shape == (3, 1, 4, 29) and seq.shape == (3, 29, 4)
    col = table.feature_names.index("s2_chroma03")  # statistic 2, descriptor 17 + 3 = 20
    assert grid[0, 0, 1, 19].item() == x[0, col] == seq[0, 19, 1].item()
    assert make_view("tokens", x).x.shape == (3, 116, 1)
    assert make_view("vector", x).x.shape == (3, 116)


def test_normaliser_statistics_come_from_train_only():
    table = load_uci()
    (split,) = make_splits(table.frame, SplitParams(), seed=0)
    x = table.features.copy()
    x[split.test] += 1000.0  # a shift in test rows must not move the statistics
    norm = Normalizer.fit(x[split.train])
    np.testing.assert_allclose(norm.mean, table.features[split.train].mean(axis=0), rtol=1e-5, atol=1e-5)
    assert np.abs(norm.transform(x[split.train]).mean(axis=0)).max() < 1e-4
    restored = Normalizer.from_state(norm.to_state())
    np.testing.assert_allclose(restored.std, norm.std)


def test_the_collapsed_grid_keeps_statistics_by_descriptors():
    table = load_uci()
    x = table.features[:3]
    grid = make_view("grid", x, grid_shape=table.grid_shape).x
    seq = make_view("grid_sequence", x, grid_shape=table.grid_shape).x
    assert grid.shape == (3, 1, 4, 18) and seq.shape == (3, 18, 4)
    col = table.feature_names.index("s3_chroma")  # statistic 3, descriptor 18: the chroma value
    assert grid[0, 0, 2, 17].item() == x[0, col] == seq[0, 17, 2].item()
    assert grid[0, 0, 2, 0].item() == x[0, table.feature_names.index("s3_timbre01")]
