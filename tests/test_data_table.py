"""Generic table source (bring your own features), on real Spotify country subsets."""
import numpy as np
import pandas as pd
import pytest

from geomusic_lib.data import DataError, load_table, make_splits
from geomusic_lib.core import SplitParams

FEATURES = ["danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness",
            "liveness", "valence", "tempo"]


@pytest.fixture
def top50(fixtures):
    return fixtures / "spotify_country" / "top50_8countries_2025-02-12.csv"


def test_table_with_named_features_groups_and_ids(top50):
    table = load_table(top50, "country", FEATURES, group_column="artists")
    assert table.feature_names == FEATURES
    assert table.frame["label"].nunique() == 8 and len(table.frame) == 400
    assert table.has_groups


def test_every_numeric_column_is_a_feature_when_none_are_listed(top50):
    table = load_table(top50, "country")
    assert "danceability" in table.feature_names and "name" not in table.feature_names


def test_no_artist_in_two_splits_for_a_table(top50):
    frame = load_table(top50, "country", FEATURES, group_column="artists").frame
    (split,) = make_splits(frame, SplitParams(), seed=0)
    sides = [set(frame.loc[idx, "group"]) for idx in (split.train, split.val, split.test)]
    assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]


def test_latin1_file_needs_its_encoding(fixtures):
    path = fixtures / "spotify_country" / "top50contry_5countries_latin1.csv"
    with pytest.raises(DataError, match=r"top50contry_5countries_latin1.csv: not valid utf-8 .*encoding: latin-1"):
        load_table(path, "country")
    table = load_table(path, "country", ["bpm", "nrgy", "dnce", "dB"], encoding="latin-1")
    assert table.frame["label"].nunique() == 5


def test_missing_columns_are_listed_with_the_key_that_names_them(top50):
    with pytest.raises(DataError, match=r"no column for data.table.label_column: 'origin', data.table.group_column: "
                                        r"'band'\. Found: spotify_id, name, artists"):
        load_table(top50, "origin", ["tempo_bpm"], group_column="band")
    with pytest.raises(DataError, match=r"missing required column\(s\) \['tempo_bpm'\].*data.table.feature_columns"):
        load_table(top50, "country", ["tempo_bpm"])


def test_nan_labels_name_the_column_and_rows(tmp_path, top50):
    raw = pd.read_csv(top50)
    raw.loc[[3, 7], "country"] = np.nan
    path = tmp_path / "nan_labels.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"nan_labels.csv: column 'country' has 2 empty label\(s\) \(first rows \[3, 7\]\)"):
        load_table(path, "country", FEATURES)


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.csv: the file is empty"):
        load_table(empty, "label")
    header = tmp_path / "header.csv"
    header.write_text("label,x\n")
    with pytest.raises(DataError, match="header.csv: the file has a header but no data rows"):
        load_table(header, "label")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.parquet: data file not found"):
        load_table(tmp_path / "nope.parquet", "label")


def test_split_impossible_for_lack_of_groups(top50):
    frame = load_table(top50, "country", FEATURES, group_column="artists").frame
    frame["group"] = np.where(np.arange(len(frame)) % 2 == 0, "artist A", "artist B")
    with pytest.raises(DataError, match=r"column 'group': cannot make the test split: 2 distinct artist group"):
        make_splits(frame, SplitParams(), seed=0)


def test_parquet_tables_work(tmp_path, top50):
    path = tmp_path / "t.parquet"
    pd.read_csv(top50).to_parquet(path)
    assert len(load_table(path, "country", FEATURES).frame) == 400


def test_auto_detected_features_list_the_skipped_text_columns(top50):
    table = load_table(top50, "country", group_column="artists")
    assert len(table.feature_names) == 18  # every numeric column, booleans included
    note = table.notes["skipped_columns"]
    for column in ("spotify_id", "name", "snapshot_date", "album_name", "album_release_date"):
        assert column in note


def test_decimal_commas_load_with_the_decimal_option(tmp_path, top50):
    raw = pd.read_csv(top50)
    path = tmp_path / "semicolons.csv"
    raw.to_csv(path, sep=";", decimal=",", index=False)
    table = load_table(path, "country", sep=";", decimal=",")
    reference = load_table(top50, "country")
    assert table.feature_names == reference.feature_names
    np.testing.assert_allclose(table.features, reference.features)


def test_rows_without_features_are_dropped_with_a_note(fixtures):
    path = fixtures / "spotify_country" / "top50contry_5countries_latin1.csv"
    table = load_table(path, "country", ["bpm", "nrgy", "dnce", "dB"], encoding="latin-1")
    assert len(table.frame) == 249 and np.isfinite(table.features).all()
    assert "dropped 1 row(s) with empty feature cells" in table.notes["dropped_rows"]


def test_classes_too_small_to_split_are_dropped_with_a_note(tmp_path, top50, caplog):
    raw = pd.read_csv(top50)
    raw.loc[0, "country"] = "Atlantis"
    raw.loc[[1, 2], "country"] = "Lemuria"
    path = tmp_path / "small.csv"
    raw.to_csv(path, index=False)
    table = load_table(path, "country", FEATURES)
    assert {"Atlantis", "Lemuria"}.isdisjoint(table.classes()) and len(table.frame) == 397
    note = table.notes["dropped_classes"]
    assert "dropped 2 class(es)" in note and "'Atlantis' (1)" in note and "'Lemuria' (2)" in note
    assert note in caplog.text


def test_every_class_reaches_train_validation_and_test(top50, caplog):
    from geomusic_lib.data import split_gaps

    frame = load_table(top50, "country", FEATURES).frame
    splits = make_splits(frame, SplitParams(), seed=0)
    assert split_gaps(frame, splits) == []
    tiny = pd.concat([frame, frame[frame["label"] == "ZA"].head(3).assign(label="Tiny", track_id=["a", "b", "c"])])
    tiny = tiny.reset_index(drop=True)
    tiny.loc[tiny["label"] == "Tiny", "group"] = "one artist"  # one artist: always on one side
    gaps = split_gaps(tiny, make_splits(tiny, SplitParams(), seed=0))
    assert gaps and all("'Tiny'" in g for g in gaps) and gaps[0] in caplog.text


def test_the_run_checks_a_user_table_before_the_first_notebook(top50):
    """A missing label column stopped the run only after 00 had run, without naming the key."""
    from geomusic_lib.core import params_from_dict
    from geomusic_lib.pipeline.run import UserError, check_table_source

    params = params_from_dict({"data": {"source": "table", "table": {"path": str(top50), "label_column": "origin"}}})
    with pytest.raises(UserError, match=r"no column for data.table.label_column: 'origin'"):
        check_table_source(params, ["00_overview", "01_data_prep"])
    check_table_source(params, ["07_evaluation"])  # 01 does not run: nothing to check
    good = params_from_dict({"data": {"source": "table", "table": {"path": str(top50), "label_column": "country",
                                                                   "encoding": "latin-1"}}})
    check_table_source(good, ["01_data_prep"])


def test_an_artist_like_column_groups_the_split_unless_the_params_say_none(tmp_path, top50):
    """With only data: set, a table's `Artist` column used to be ignored, so artists spanned train and test."""
    from geomusic_lib.core import params_from_dict
    from geomusic_lib.data import make_splits

    path = tmp_path / "mine.csv"
    pd.read_csv(top50).rename(columns={"artists": "Artist"}).to_csv(path, index=False)
    table = load_table(path, "country", FEATURES)
    assert table.notes["group_column"] == "Artist" and "found by its name" in table.notes["group_note"]
    assert table.has_groups and table.frame["group"].notna().all()
    for split in make_splits(table.frame, params_from_dict({}).split, seed=0):
        groups = table.frame["group"].to_numpy()
        assert not set(groups[split.train]) & set(groups[split.test])
    ungrouped = load_table(path, "country", FEATURES, group_column="none")
    assert not ungrouped.has_groups and "not grouped (data.table.group_column: none)" in ungrouped.notes["group_note"]
    spotify = load_table(top50, "country", FEATURES)  # Spotify's own name for it, `artists`, counts too
    assert spotify.notes["group_column"] == "artists"
    plain_path = tmp_path / "plain.csv"
    pd.read_csv(top50).drop(columns="artists").to_csv(plain_path, index=False)
    unnamed = load_table(plain_path, "country", FEATURES)
    assert not unnamed.has_groups and "no artist-like column" in unnamed.notes["group_note"]
