"""The metadata source: multi-hot Wikidata fields, and no target or proxy ever becomes a feature."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geomusic_lib.features import extract_features, FeatureError, is_target_proxy, parse_list
from geomusic_lib.core import FeatureParams

LEAKY = ["location_ne_country", "location_rg_latitude", "station_rg_id", "station_ar_genre",
         "artist_wd_country", "artist_wd_coordinates"]


def tracks_with_proxies() -> pd.DataFrame:
    return pd.DataFrame({
        "track_id": ["a", "b", "c", "d"],
        "artist_wd_instruments": [["guitar", "voice"], "['guitar']", "piano; guitar", None],
        "track_wd_language": ["English", "english", "French", ""],
        "artist_wd_genre": ["['rock', 'pop']", "rock|folk", "rock, jazz", np.nan],
        "location_ne_country": ["Mali", "Japan", "Mali", "India"],
        "location_rg_latitude": [12.6, 35.7, 12.6, 28.6],
        "station_rg_id": ["s1", "s2", "s1", "s3"],
        "station_ar_genre": ["rock", "pop", "jazz", "rock"],
        "artist_wd_country": ["Mali", "Japan", "Mali", "India"],
        "artist_wd_coordinates": ["Point(1 2)", "Point(3 4)", "Point(1 2)", "Point(5 6)"],
        "track_sp_danceability": [0.1, 0.2, 0.3, 0.4],
    })


@pytest.mark.parametrize("value, expected", [
    (["Guitar", " voice "], ["guitar", "voice"]),
    ("['guitar', 'voice']", ["guitar", "voice"]),
    ('["a", "b"]', ["a", "b"]),
    ("a; b|c", ["a", "b", "c"]),
    ("single", ["single"]),
    (None, []), (np.nan, []), ("", []), ("[]", []), ("nan", []),
    ("['broken'", ["broken"]),
])
def test_parse_list_handles_every_export_shape(value, expected):
    assert parse_list(value) == expected


def test_multi_hot_values_above_min_count(tmp_path):
    params = FeatureParams(source="metadata", metadata_min_count=2)
    result = extract_features(tracks_with_proxies(), params, tmp_path)
    f = result.features
    assert f.loc["a", "artist_wd_instruments__guitar"] == 1 and f.loc["d", "artist_wd_instruments__guitar"] == 0
    assert "artist_wd_instruments__piano" not in f.columns  # seen once < min_count
    assert f["artist_wd_genre__rock"].tolist() == [1, 1, 1, 0]
    assert f["track_wd_language__english"].tolist() == [1, 1, 0, 0]
    assert f.loc["d", "track_wd_language__known"] == 0
    assert result.coverage["acoustic"] is False
    assert result.coverage["missing"] == 1  # row d has no metadata at all


@pytest.mark.parametrize("target", ["station", "artist"])
def test_target_and_proxies_never_become_features(tmp_path, target):
    fields = FeatureParams().metadata_fields
    params = FeatureParams(source="metadata", metadata_min_count=1, metadata_fields=fields)
    result = extract_features(tracks_with_proxies(), params, tmp_path, target=target)
    sources = {c.split("__")[0] for c in result.features.columns}
    assert sources <= set(fields)
    assert not any(col.startswith(leak) for col in result.features.columns for leak in LEAKY)
    # values of the proxies (e.g. the country names) do not sneak in under another name
    assert not any("mali" in c or "japan" in c for c in result.features.columns)


@pytest.mark.parametrize("target, field", [
    ("station", "location_ne_country"), ("station", "station_ar_genre"),
    ("artist", "artist_wd_country"), ("artist", "artist_wd_coordinates"),
])
def test_asking_for_a_proxy_field_is_refused(tmp_path, target, field):
    params = FeatureParams(source="metadata", metadata_fields=["artist_wd_genre", field])
    with pytest.raises(FeatureError, match="leak"):
        extract_features(tracks_with_proxies(), params, tmp_path, target=target)


def test_proxy_rules_per_target():
    assert is_target_proxy("Location_NE_Country", "station") and is_target_proxy("station_rg_id", "station")
    assert not is_target_proxy("artist_wd_country", "station")  # not in the defaults, but not the label
    assert is_target_proxy("artist_wd_country", "artist") and is_target_proxy("artist_wd_coordinates", "artist")
    assert not is_target_proxy("artist_wd_genre", "artist") and not is_target_proxy("track_wd_language", "station")
