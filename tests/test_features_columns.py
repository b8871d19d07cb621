"""The columns source, the input checks and the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geomusic_lib.features import AUDIO_FEATURE_COLUMNS, extract_features, FeatureError, normalise_columns
from geomusic_lib.features.cli import main
from geomusic_lib.core import FeatureParams

FIXTURE = Path(__file__).parent / "fixtures" / "features" / "top50_sample.csv"


def test_real_export_with_bare_api_names(tmp_path):
    raw = pd.read_csv(FIXTURE)
    tracks = raw.rename(columns={"spotify_id": "track_id"})
    result = extract_features(tracks, FeatureParams(source="columns"), tmp_path)
    assert list(result.features.columns) == AUDIO_FEATURE_COLUMNS
    assert len(result.features) == len(raw) and result.coverage["missing"] == 0
    first = raw.iloc[0]
    row = result.features.loc[first["spotify_id"]]
    assert row["track_sp_danceability"] == pytest.approx(first["danceability"])
    assert row["track_sp_beatsperbar"] == first["time_signature"]
    on_disk = pd.read_parquet(tmp_path / "features.parquet")
    pd.testing.assert_frame_equal(on_disk, result.features)


def test_v1_and_legacy_names_give_the_same_columns(tmp_path):
    v1 = pd.DataFrame({"track_id": ["a", "b", "c"], "track_sp_Danceability": [0.1, 0.2, None],
                       "track_sp_tempo": [100.0, 120.0, None], "track_sp_Acousticness": [0.5, 0.6, None]})
    legacy = pd.DataFrame({"track_id": ["a", "b", "c"], "track_danceability": [0.1, 0.2, None],
                           "track_tempo": [100.0, 120.0, None], "track_sp_Acousticness": [0.5, 0.6, None]})
    first = extract_features(v1, FeatureParams(source="columns"), tmp_path / "v1")
    second = extract_features(legacy, FeatureParams(source="columns"), tmp_path / "legacy")
    pd.testing.assert_frame_equal(first.features, second.features)
    assert set(first.features.columns) == {"track_sp_danceability", "track_sp_tempo", "track_sp_acousticness"}
    assert list(first.features.index) == ["a", "b"] and first.coverage["missing"] == 1


def test_v1_name_wins_over_legacy_duplicate():
    frame = normalise_columns(pd.DataFrame({"track_sp_energy": [1.0], "track_energy": [9.0]}))
    assert frame["track_sp_energy"].tolist() == [1.0]


def test_input_errors_name_the_column(tmp_path):
    with pytest.raises(FeatureError, match="'track_id'"):
        extract_features(pd.DataFrame({"x": [1]}), FeatureParams(), tmp_path)
    with pytest.raises(FeatureError, match="not unique"):
        extract_features(pd.DataFrame({"track_id": ["a", "a"], "danceability": [1, 2]}), FeatureParams(), tmp_path)
    with pytest.raises(FeatureError, match="no Spotify audio-feature columns"):
        extract_features(pd.DataFrame({"track_id": ["a"], "title": ["t"]}), FeatureParams(), tmp_path)


def test_sample_size_is_seeded_and_stable(tmp_path):
    tracks = pd.DataFrame({"track_id": [f"t{i}" for i in range(100)], "energy": np.linspace(0, 1, 100)})
    params = FeatureParams(source="columns", sample_size=10)
    first = extract_features(tracks, params, tmp_path / "a", seed=3)
    second = extract_features(tracks, params, tmp_path / "b", seed=3)
    other = extract_features(tracks, params, tmp_path / "c", seed=4)
    assert list(first.features.index) == list(second.features.index)
    assert list(first.features.index) != list(other.features.index) and len(first.features) == 10


def test_cli_writes_features_and_coverage(tmp_path, capsys):
    tracks = pd.read_csv(FIXTURE).rename(columns={"spotify_id": "track_id"})
    tracks.to_csv(tmp_path / "tracks.csv", index=False)
    code = main(["--input", str(tmp_path / "tracks.csv"), "--source", "columns", "--out", str(tmp_path / "out"),
                 "--sample-size", "5", "--seed", "1"])
    assert code == 0
    coverage = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert coverage["tracks"] == 5 and coverage["with_features"] == 5
    assert "with_features=5" in capsys.readouterr().out


def test_cli_reports_errors_plainly(tmp_path, capsys):
    assert main(["--input", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out")]) == 2
    assert "input file not found" in capsys.readouterr().err
