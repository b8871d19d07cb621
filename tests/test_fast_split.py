"""The vectorised grouped, stratified split (`assign_groups`, `fast_splits`) for tables with many groups,
the rule that keeps sklearn's StratifiedGroupKFold below `FAST_SPLIT_MIN_GROUPS` (UCI's and folk-size
splits byte-identical to before), `share_deviation`, and the split cache beside MIRAGE's per-track cache.

The bound checked: with groups of one class each, every part p holds within S_c rows (the largest group
of class c) of its fraction f_p of class c's rows, so the class's share in the part is within
(S_c + share_c * |n_p - f_p N|) / n_p of its share overall (n_p: the part's rows, N: all rows).
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from geomusic_lib.core import params_from_dict, SplitParams
from geomusic_lib.data import bag_splits, load_uci, make_splits, run_splits, split_groups
from geomusic_lib.data import splits as splits_module
from geomusic_lib.data.splits import assign_groups, fast_splits, group_table, share_deviation, share_gaps
from geomusic_lib.data.store import split_cache_file

SEEDS = [0, 1, 7, 2024]
HOLDOUT, KFOLD = SplitParams(), SplitParams(strategy="kfold", folds=5)


def grouped_table(seed: int, n_groups: int = 3000, n_classes: int = 12, mixed: float = 0.0) -> pd.DataFrame:
    """Zipf-sized groups, one home class each (a share `mixed` of rows any class); class 'solo' is one group,
    and one group of class c0 holds a quarter of the rows (larger than a validation part or a fold)."""
    rng = np.random.default_rng(seed)
    sizes = np.maximum(1, (40 / np.arange(1, n_groups + 1) ** 0.7).astype(int))[rng.permutation(n_groups)]
    sizes[0], sizes[1] = int(sizes.sum() / 3), 30  # group 0 ≈ 1/4 of all rows; group 1 is class 'solo'
    home = rng.integers(0, n_classes, n_groups).astype(object)
    home[0], home[1] = 0, "solo"
    group = np.repeat(np.arange(n_groups), sizes)
    label = np.array([f"c{h}" if h != "solo" else "solo" for h in home], dtype=object)[group]
    swap = rng.random(len(group)) < mixed
    label[swap] = np.array([f"c{c}" for c in rng.integers(0, n_classes, swap.sum())], dtype=object)
    order = rng.permutation(len(group))
    return pd.DataFrame({"track_id": [f"t{i}" for i in range(len(group))], "label": label[order],
                         "group": [f"a{g}" for g in group[order]]})


def folk_size(seed: int = 0, n_rows: int = 6000, n_groups: int = 2500, n_classes: int = 12) -> pd.DataFrame:
    """A table of folk's size (thousands of variant groups), as used to record the digests below."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_groups, n_rows)
    home = rng.integers(0, n_classes, n_groups)
    label = np.where(rng.random(n_rows) < 0.9, home[group], rng.integers(0, n_classes, n_rows))
    return pd.DataFrame({"track_id": [f"t{i}" for i in range(n_rows)], "label": [f"c{c}" for c in label],
                         "group": [f"g{g}" for g in group]})


def digest(splits) -> str:
    h = hashlib.sha256()
    for s in splits:
        h.update(np.int64(s.fold).tobytes())
        for part in (s.train, s.val, s.test):
            h.update(np.asarray(part, dtype=np.int64).tobytes())
            h.update(b"|")
    return h.hexdigest()[:16]


@pytest.fixture
def fast(monkeypatch):
    """Every table gets the vectorised split (the tables here are smaller than the threshold)."""
    monkeypatch.setattr(splits_module, "FAST_SPLIT_MIN_GROUPS", 0)


def codes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return pd.factorize(frame["label"])[0], pd.factorize(split_groups(frame))[0]


def check_partition_and_groups(frame: pd.DataFrame, splits) -> None:
    groups = split_groups(frame)
    for s in splits:
        rows = np.concatenate([s.train, s.val, s.test])
        assert np.array_equal(np.sort(rows), np.arange(len(frame)))  # the parts partition the rows
        sides = [set(groups[p]) for p in (s.train, s.val, s.test)]
        assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]  # no group straddles


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fractions", [[0.7, 0.1, 0.2], [1.0] * 5, [0.875, 0.125], [0.8, 0.0, 0.2]])
def test_each_part_holds_its_fraction_of_each_class_within_the_largest_group(seed, fractions):
    y, g = codes(grouped_table(seed, mixed=0.2))
    table = group_table(y, g)
    dominant, size = table.dominant, table.size
    part = assign_groups(table, fractions, np.random.default_rng(seed))
    share = np.asarray(fractions) / sum(fractions)
    for c in np.unique(dominant):
        mine = dominant == c
        held = np.bincount(part[mine], weights=size[mine], minlength=len(fractions))
        assert np.all(np.abs(held - share * size[mine].sum()) <= size[mine].max() + 1e-9), (c, held)
    assert not np.isin(np.flatnonzero(share == 0), part).any()  # an empty fraction gets no group


@pytest.mark.parametrize("seed", SEEDS)
def test_holdout_and_kfold_keep_groups_whole_partition_rows_and_stay_within_the_bound(seed, fast):
    frame = grouped_table(seed)
    holdout, folds = make_splits(frame, HOLDOUT, seed), make_splits(frame, KFOLD, seed)
    check_partition_and_groups(frame, holdout + folds)
    assert np.array_equal(np.sort(np.concatenate([s.test for s in folds])), np.arange(len(frame)))
    y, g = codes(frame)
    table = group_table(y, g)
    dominant, size = table.dominant, table.size
    biggest = pd.Series(size).groupby(dominant).max().to_numpy()  # S_c, by class code
    overall = np.bincount(y) / len(y)
    n = len(frame)
    checks = [(p, f) for p, f in zip((holdout[0].train, holdout[0].val, holdout[0].test), (0.7, 0.1, 0.2))]
    checks += [(s.test, 1 / 5) for s in folds]
    for rows, f in checks:
        share = np.bincount(y[rows], minlength=len(overall)) / len(rows)
        bound = (biggest + overall * abs(len(rows) - f * n)) / len(rows)
        assert np.all(np.abs(share - overall) <= bound + 1e-12)


@pytest.mark.parametrize("n_groups, bound", [(4000, 0.005), (20_000, 0.0015)])
def test_shares_are_close_on_tables_of_many_small_groups_of_mixed_labels(n_groups, bound, monkeypatch):
    """Without the giant and the single group, a fifth of the rows of any class: every class's share in
    every part within 0.5 points of its share overall at 4,000 groups (sklearn: 0.18) and within 0.15
    points at 20,000 (sklearn: 0.04, in 20-60 s); below `bound`, and below 2.5 x sklearn's gap at 4,000."""
    frame = grouped_table(3, n_groups=n_groups, mixed=0.2)
    frame = frame[~np.isin(split_groups(frame), ["a0", "a1"])].reset_index(drop=True)
    labels = frame["label"].to_numpy(dtype=str)
    sklearn_gap = share_deviation(labels, make_splits(frame, KFOLD, 0)) if n_groups < 10_000 else np.inf
    monkeypatch.setattr(splits_module, "FAST_SPLIT_MIN_GROUPS", 0)
    for seed in SEEDS:
        for params in (HOLDOUT, KFOLD):
            gap = share_deviation(labels, make_splits(frame, params, seed))
            assert gap < bound and gap < 2.5 * sklearn_gap, (seed, params.strategy, gap, sklearn_gap)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_the_split_is_seeded_and_deterministic(seed, fast):
    frame = grouped_table(seed, mixed=0.2)
    for params in (HOLDOUT, KFOLD):
        a, b, c = make_splits(frame, params, seed), make_splits(frame, params, seed), make_splits(frame, params, seed + 1)
        assert digest(a) == digest(b) != digest(c)


def test_the_single_group_class_and_the_giant_group_sit_on_one_side(fast):
    frame = grouped_table(0)
    groups = split_groups(frame)
    for s in make_splits(frame, HOLDOUT, 0) + make_splits(frame, KFOLD, 0):
        for name in ("a0", "a1"):  # the giant group (1/4 of the rows) and class 'solo'
            sides = [np.isin(np.flatnonzero(groups == name), p).all() for p in (s.train, s.val, s.test)]
            assert sum(sides) == 1


def test_bagging_folds_of_many_groups_partition_the_training_rows(fast):
    frame = grouped_table(1, mixed=0.2)
    (split,) = make_splits(frame, HOLDOUT, 1)
    members = bag_splits(frame, split, 4, seed=1)
    rest = np.sort(np.concatenate([split.train, split.val]))
    held = np.sort(np.concatenate([m.val for m in members]))
    assert np.array_equal(held, rest) and all(np.array_equal(m.test, split.test) for m in members)
    groups = split_groups(frame)
    assert all(not set(groups[m.train]) & set(groups[m.val]) for m in members)
    assert digest(members) == digest(bag_splits(frame, split, 4, seed=1))


def test_tables_with_many_groups_get_the_fast_split_and_small_ones_sklearns(monkeypatch):
    frame = grouped_table(2, n_groups=3000)
    labels, groups = frame["label"].to_numpy(dtype=str), pd.factorize(split_groups(frame))[0]
    assert len(np.unique(groups)) == 3000 < splits_module.FAST_SPLIT_MIN_GROUPS
    sklearn_split = make_splits(frame, HOLDOUT, 0)
    assert digest(sklearn_split) != digest(fast_splits(labels, groups, HOLDOUT, 0))
    monkeypatch.setattr(splits_module, "FAST_SPLIT_MIN_GROUPS", 3000)  # exactly the table's groups: fast
    assert digest(make_splits(frame, HOLDOUT, 0)) == digest(fast_splits(labels, groups, HOLDOUT, 0))
    monkeypatch.setattr(splits_module, "FAST_SPLIT_MIN_GROUPS", 3001)  # one more: sklearn's, as before
    assert digest(make_splits(frame, HOLDOUT, 0)) == digest(sklearn_split)


def test_uci_and_folk_size_splits_are_byte_identical_to_before():
    """Digests recorded with the code before the fast split (scikit-learn 1.9.1, numpy 2.4)."""
    assert splits_module.FAST_SPLIT_MIN_GROUPS == 20_000
    uci = load_uci()
    assert digest(make_splits(uci.frame, HOLDOUT, seed=0)) == "cacf674a122828ed"
    assert digest(make_splits(uci.frame, SplitParams(strategy="kfold", folds=10), seed=42)) == "0b25227d392d02a7"
    assert digest(make_splits(uci.frame, HOLDOUT, seed=0, identical_features=uci.feature_names)) == "cacf674a122828ed"
    folk = folk_size()
    folds = make_splits(folk, KFOLD, seed=3)
    assert digest(make_splits(folk, HOLDOUT, seed=0)) == "0b334495a7187b45"
    assert digest(folds) == "ff0291720aaeee88"
    assert digest(bag_splits(folk, folds[1], 4, seed=3)) == "27c30e5317ab02c8"


def test_share_deviation_is_zero_for_a_perfect_split_and_the_largest_gap_otherwise():
    labels = np.array(["a", "a", "b", "b"])
    perfect = [splits_module.Split(-1, np.array([0, 2]), np.array([], dtype=int), np.array([1, 3]))]
    skewed = [splits_module.Split(-1, np.array([0, 1, 2]), np.array([], dtype=int), np.array([3]))]
    assert share_deviation(labels, perfect) == 0.0
    assert share_deviation(labels, skewed) == pytest.approx(0.5)  # test is all 'b': 1.0 vs 0.5
    assert share_deviation(labels, skewed, relative=True) == pytest.approx(1.0)
    assert share_gaps(labels, skewed).shape == (2, 2)


def mirage_params(path, tmp_path, **split):
    return params_from_dict({"runs_dir": str(tmp_path), "run_name": "m", "split": split, "data": {
        "source": "mirage", "mirage": {"path": str(path), "min_reliability": 0.0, "min_tracks_per_class": 8,
                                       "cache_dir": str(tmp_path / "cache")}}})


def test_the_split_is_cached_beside_the_track_table_and_a_changed_setting_misses(tmp_path, mirage_v1, monkeypatch):
    from geomusic_lib.data import load_dataset
    from geomusic_lib.data import store

    params = mirage_params(mirage_v1, tmp_path)
    table = load_dataset(params)
    first = run_splits(table, params)
    target = split_cache_file(params)
    assert target.is_file() and target.name.startswith("mirage_v1_pilot-tracks-")
    monkeypatch.setattr(store, "make_splits", lambda *a, **k: pytest.fail("the cached split was recomputed"))
    assert digest(run_splits(load_dataset(params), params)) == digest(first)
    others = [mirage_params(mirage_v1, tmp_path, train=0.6, val=0.2, test=0.2),
              mirage_params(mirage_v1, tmp_path, strategy="kfold", folds=3),
              mirage_params(mirage_v1, tmp_path, strategy="kfold", folds=4),
              params.model_copy(update={"seed": params.seed + 1})]
    names = {target.name} | {split_cache_file(p).name for p in others}
    assert len(names) == 5  # seed, fractions and folds each make a new key
    monkeypatch.undo()
    shuffled = table.frame.sample(frac=1.0, random_state=0).reset_index(drop=True)  # other rows: not this cache's
    assert digest(run_splits(type(table)(shuffled, [], source="mirage"), params)) != digest(first)
    target.write_bytes(b"broken")
    assert digest(run_splits(table, params)) == digest(first) and target.is_file()  # rebuilt
    off = params.model_copy(update={"data": params.data.model_copy(update={"mirage": params.data.mirage.model_copy(
        update={"cache": False})})})
    assert split_cache_file(off) is None
