"""MIRAGE loader on real pilot events (tests/fixtures/mirage, see SOURCE.md), v1 and legacy names."""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geomusic_lib.data import DataError, make_splits
from geomusic_lib.data import canonical_names, load_mirage_tracks, read_mirage_events, track_keys
from geomusic_lib.core import MirageParams, SplitParams


def params(path, **kw):
    base = dict(path=path, min_reliability=0.9, min_tracks_per_class=5)
    return MirageParams(**{**base, **kw})


def test_legacy_names_map_to_v1():
    names = canonical_names(["country", "metadata_editdist", "track_id", "artist_name", "track_danceability", "Location_NE_Region"])
    assert names == {"country": "location_rg_country", "metadata_editdist": "event_ma_metadatareliability",
                     "track_id": "track_sp_id", "artist_name": "artist_sp_name",
                     "track_danceability": "track_sp_danceability", "Location_NE_Region": "location_ne_region"}


def test_reliability_filter_keeps_only_reliable_events(mirage_v1):
    raw = pd.read_csv(mirage_v1)
    events = read_mirage_events(mirage_v1, params(mirage_v1))
    expected = int((raw["event_ma_metadatareliability"] >= 0.9).sum())
    assert len(events) == expected and events["event_ma_metadatareliability"].astype(float).min() >= 0.9
    none = read_mirage_events(mirage_v1, params(mirage_v1, min_reliability=0.0))
    assert len(none) == len(raw)


def test_v1_and_legacy_exports_give_the_same_tracks(mirage_v1, mirage_legacy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v1 = load_mirage_tracks(params(mirage_v1, country_source="rg"))
        legacy = load_mirage_tracks(params(mirage_legacy))  # falls back to the Radio Garden country
    a = v1.frame.set_index("track_id").sort_index()
    b = legacy.frame.set_index("track_id").sort_index()
    assert list(a.index) == list(b.index)
    assert (a["label"] == b["label"]).all()
    # the legacy (pilot) file has latitude and longitude swapped; the loader swaps them back
    np.testing.assert_allclose(a["lat"].to_numpy(float), b["lat"].to_numpy(float), atol=1e-3)


def test_one_row_per_track_with_majority_label_and_purity(mirage_v1):
    table = load_mirage_tracks(params(mirage_v1, min_reliability=0.0, min_tracks_per_class=1))
    frame = table.frame
    assert frame["track_id"].is_unique
    report = table.notes["report"]
    assert 0 < report["mean_purity"] <= 1 and report["tracks"] >= report["tracks_kept"]
    assert report["events_without_track_or_label"] > 0  # the pilot has events with no artist/title


def test_min_tracks_per_class_drops_small_classes(mirage_v1):
    table = load_mirage_tracks(params(mirage_v1, min_tracks_per_class=20))
    counts = table.frame["label"].value_counts()
    assert counts.min() >= 20 and {"United States", "United Kingdom", "Brazil"} <= set(counts.index)


def test_track_key_prefers_spotify_id_then_artist_and_title():
    events = pd.DataFrame({"track_sp_id": ["abc", None, None], "artist_sp_name": ["X", "Beyoncé!", None],
                           "track_sp_name": ["Y", "Halo", "Z"]})
    assert track_keys(events).tolist() == ["abc", "at:beyonce|halo", ""]


def test_no_artist_in_two_splits(mirage_v1):
    table = load_mirage_tracks(params(mirage_v1, min_reliability=0.0, min_tracks_per_class=8))
    frame = table.frame
    assert frame["group"].notna().sum() > 0
    (split,) = make_splits(frame, SplitParams(), seed=0)
    artists = [set(frame.loc[idx, "group"].dropna()) for idx in (split.train, split.val, split.test)]
    assert not artists[0] & artists[1] and not artists[0] & artists[2] and not artists[1] & artists[2]
    for k_split in make_splits(frame, SplitParams(strategy="kfold", folds=3), seed=0):
        assert not set(frame.loc[k_split.train, "group"].dropna()) & set(frame.loc[k_split.test, "group"].dropna())


def test_artist_target_uses_wikidata_country_and_coordinates(tmp_path, mirage_v1):
    raw = pd.read_csv(mirage_v1).head(60)
    raw["artist_wd_country"] = np.where(np.arange(60) % 2 == 0, "Mali", "Japan")
    raw["artist_wd_coordinates"] = np.where(np.arange(60) % 2 == 0, "Point(-8.0 12.65)", "Point(139.7 35.7)")
    path = tmp_path / "artist.csv"
    raw.to_csv(path, index=False)
    frame = load_mirage_tracks(params(path, target="artist", min_reliability=0.0, min_tracks_per_class=1)).frame
    mali = frame[frame["label"] == "Mali"]
    assert set(frame["label"]) == {"Mali", "Japan"} and np.allclose(mali["lat"], 12.65)


# --- bad input: each error names the file and the column and says what to do -------------------

def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="MIRAGE.csv: MIRAGE export not found"):
        load_mirage_tracks(params(tmp_path / "MIRAGE.csv"))


def test_empty_file_is_reported(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="empty.csv: the file is empty"):
        load_mirage_tracks(params(path))


def test_non_utf8_file_is_reported(tmp_path, mirage_v1):
    path = tmp_path / "latin.csv"
    path.write_bytes(mirage_v1.read_text(encoding="utf-8").encode("latin-1", errors="replace"))
    with pytest.raises(DataError, match="latin.csv: not valid UTF-8"):
        load_mirage_tracks(params(path))


def test_missing_label_column_is_named(tmp_path, mirage_v1):
    raw = pd.read_csv(mirage_v1).drop(columns=["location_ne_country", "location_rg_country"])
    path = tmp_path / "nolabel.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"nolabel.csv: missing the label column 'location_ne_country'"):
        load_mirage_tracks(params(path))


def test_missing_reliability_column_says_how_to_skip(tmp_path, mirage_v1):
    path = tmp_path / "norel.csv"
    pd.read_csv(mirage_v1).drop(columns=["event_ma_metadatareliability"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="min_reliability: 0"):
        load_mirage_tracks(params(path))


def test_no_class_left_after_filtering(mirage_v1):
    with pytest.raises(DataError, match=r"mirage_v1_pilot.csv: no class in column 'location_ne_country' has at least 10000"):
        load_mirage_tracks(params(mirage_v1, min_tracks_per_class=10_000))


def test_nan_labels_are_dropped_not_crashed_on(tmp_path, mirage_v1):
    raw = pd.read_csv(mirage_v1)
    raw.loc[:50, "location_ne_country"] = np.nan
    path = tmp_path / "nan.csv"
    raw.to_csv(path, index=False)
    table = load_mirage_tracks(params(path, min_reliability=0.0, min_tracks_per_class=1))
    assert table.frame["label"].notna().all()


def test_historical_countries_are_left_out_at_region_level_with_a_warning(tmp_path, mirage_v1):
    raw = pd.read_csv(mirage_v1).head(80)
    raw["artist_wd_country"] = np.array(["Soviet Union", "Mali", "Japan"])[np.arange(80) % 3]
    path = tmp_path / "hist.csv"
    raw.to_csv(path, index=False)
    with pytest.warns(UserWarning, match=r"hist.csv: 1 name\(s\) in 'artist_wd_country' have no region .*Soviet Union"):
        table = load_mirage_tracks(params(path, target="artist", level="region", min_reliability=0.0, min_tracks_per_class=1))
    assert set(table.frame["label"]) == {"Western Africa", "Eastern Asia"}


def test_a_second_read_comes_from_the_parquet_cache_and_a_changed_file_is_read_again(tmp_path, mirage_v1):
    path = tmp_path / "MIRAGE.csv"
    raw = pd.read_csv(mirage_v1)
    raw.to_csv(path, index=False)
    p = params(path, cache_dir=tmp_path / "cache")
    first, again = read_mirage_events(path, p), read_mirage_events(path, p)
    assert not first.attrs["from_cache"] and again.attrs["from_cache"]
    pd.testing.assert_frame_equal(first, again)
    assert len(list((tmp_path / "cache").glob("*.parquet"))) == 1
    raw.iloc[:100].to_csv(path, index=False)  # a new download: new size and time
    changed = read_mirage_events(path, p)
    assert not changed.attrs["from_cache"] and changed.attrs["events_read"] == 100
    assert not read_mirage_events(path, params(path, cache=False, cache_dir=tmp_path / "off")).attrs["from_cache"]
    assert not (tmp_path / "off").exists()


def test_numbers_are_parsed_and_junk_in_a_number_column_becomes_missing(tmp_path, mirage_v1):
    raw = pd.read_csv(mirage_v1)
    raw["track_sp_tempo"] = ["n/a" if i % 10 == 0 else str(100 + i) for i in range(len(raw))]
    raw["track_sp_genre"] = "pop"
    raw["event_ma_metadatareliability"] = ["high"] + raw["event_ma_metadatareliability"].astype(str).tolist()[1:]
    path = tmp_path / "junk.csv"
    raw.to_csv(path, index=False)
    events = read_mirage_events(path, params(path, min_reliability=0.0, cache=False))
    assert events["track_sp_tempo"].dtype == np.float64 and events["track_sp_tempo"].isna().sum() == (len(raw) + 9) // 10
    assert events["track_sp_genre"].eq("pop").all()  # text stays text
    assert np.isnan(events["event_ma_metadatareliability"].iloc[0])


def test_the_per_track_table_is_cached_with_its_report_and_warnings_and_a_changed_setting_misses(tmp_path, mirage_v1, monkeypatch):
    from geomusic_lib.data import mirage

    raw = pd.read_csv(mirage_v1)
    raw["location_rg_latitude"], raw["location_rg_longitude"] = raw["location_rg_longitude"] * 3, raw["location_rg_latitude"]
    path = tmp_path / "MIRAGE.csv"
    raw.to_csv(path, index=False)
    p = params(path, cache_dir=tmp_path / "cache", min_tracks_per_class=1)
    with pytest.warns(UserWarning, match="look swapped"):
        first = load_mirage_tracks(p)
    assert len(list((tmp_path / "cache").glob("MIRAGE-tracks-*.parquet"))) == 1

    def no_vote(*args, **kwargs):
        raise AssertionError("the majority vote ran again")

    monkeypatch.setattr(mirage, "collapse_tracks", no_vote)
    with pytest.warns(UserWarning, match="look swapped"):  # the cached table shows the load's warnings again
        again = load_mirage_tracks(p)
    pd.testing.assert_frame_equal(first.frame, again.frame)
    assert again.notes == first.notes and again.notes["report"]["events_read"] == len(raw)
    for changed in ({"min_tracks_per_class": 2}, {"level": "continent"}, {"min_reliability": 0.5}, {"max_events": 50},
                    {"country_source": "rg"}):
        with pytest.raises(AssertionError, match="ran again"):
            load_mirage_tracks(p.model_copy(update=changed))
    with pytest.raises(AssertionError, match="ran again"):
        load_mirage_tracks(p, extra_columns=["station_ar_genre"])
    with pytest.raises(AssertionError, match="ran again"):
        load_mirage_tracks(p.model_copy(update={"cache": False}))


def test_tests_never_touch_the_users_cache(mirage_v1):
    from geomusic_lib.data import default_cache_dir

    assert not default_cache_dir().is_relative_to(Path.home() / ".cache")
    before = set(default_cache_dir().glob("*")) if default_cache_dir().is_dir() else set()
    load_mirage_tracks(params(mirage_v1, country_source="rg", min_tracks_per_class=1))  # cache on, no cache_dir
    assert set(default_cache_dir().glob("*")) - before  # it wrote to the session's temporary cache
