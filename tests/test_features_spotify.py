"""The spotify source against a fake Web API on 127.0.0.1, driven by the real spotipy client."""
from __future__ import annotations

import base64
import json
import logging
import sqlite3
import time

import pandas as pd
import pytest

from fake_spotify import CLIENT_ID, CLIENT_SECRET, TOKEN, FakeSpotify, Fault, synthetic_id
from geomusic_lib.features import (
    SPOTIFY_NOTICE, FeatureError, SpotifyForbiddenError, SpotifyUnavailableError, extract_features,
)
from geomusic_lib.features import best_match, normalise_title, read_credentials
from geomusic_lib.core import FeatureParams


@pytest.fixture()
def creds(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", CLIENT_SECRET)


@pytest.fixture()
def fake(creds):
    with FakeSpotify() as server:
        yield server


def spotify_params(fake: FakeSpotify, **spotify) -> FeatureParams:
    params = FeatureParams(source="spotify")
    params.spotify = params.spotify.model_copy(update={
        "api_base": fake.url, "backoff_base_s": 0.01, "timeout_s": 2.0, **spotify})
    return params


def tracks_with_ids(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"track_id": [f"t{i}" for i in range(start, start + n)],
                         "track_sp_id": [synthetic_id(i) for i in range(start, start + n)]})


def ids_per_call(fake: FakeSpotify) -> list[list[str]]:
    return [c.query["ids"][0].split(",") for c in fake.calls_to("/v1/audio-features")]


def test_audio_features_batched_at_most_100_ids(fake, tmp_path):
    tracks = tracks_with_ids(250)
    tracks.loc[249, "track_sp_id"] = tracks.loc[0, "track_sp_id"]  # a repeated id is asked for once
    result = extract_features(tracks, spotify_params(fake), tmp_path / "out")
    calls = ids_per_call(fake)
    assert [len(c) for c in calls] == [100, 100, 49]
    assert len({i for c in calls for i in c}) == 249
    assert len(result.features) == 250 and result.coverage["fetched"] == 250
    assert result.coverage["requests"] == 3
    assert (tmp_path / "out" / "features.parquet").is_file()
    coverage = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert {"fetched", "missing", "no_match", "forbidden", "cached"} <= set(coverage)


def test_rerun_fetches_only_missing_ids(fake, tmp_path):
    out = tmp_path / "out"
    extract_features(tracks_with_ids(150), spotify_params(fake), out)
    fake.calls.clear()
    result = extract_features(tracks_with_ids(250), spotify_params(fake), out)
    asked = {i for c in ids_per_call(fake) for i in c}
    assert asked == {synthetic_id(i) for i in range(150, 250)}
    assert result.coverage["cached"] == 150 and result.coverage["fetched"] == 100
    fake.calls.clear()
    again = extract_features(tracks_with_ids(250), spotify_params(fake), out)
    assert ids_per_call(fake) == [] and again.coverage["cached"] == 250
    pd.testing.assert_frame_equal(again.features, result.features)


def test_retry_after_is_honoured(fake, tmp_path):
    fake.script("/v1/audio-features", Fault(status=429, retry_after=1))
    result = extract_features(tracks_with_ids(10), spotify_params(fake), tmp_path / "out")
    first, second = fake.calls_to("/v1/audio-features")
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0
    assert result.coverage["fetched"] == 10 and result.coverage["retries"] == 1


def test_5xx_timeouts_and_bad_json_are_retried(fake, tmp_path):
    fake.script("/v1/audio-features", Fault(status=500), Fault(status=503), Fault(delay_s=1.0),
                Fault(body=b'{"audio_features": [tru'))
    result = extract_features(tracks_with_ids(5), spotify_params(fake, timeout_s=0.3), tmp_path / "out")
    assert result.coverage["fetched"] == 5
    assert result.coverage["retries"] == 4 and result.coverage["requests"] == 5


def test_tries_are_bounded(fake, tmp_path):
    fake.script("/v1/audio-features", *[Fault(status=503)] * 5)
    with pytest.raises(SpotifyUnavailableError, match="gave up after 3 tries"):
        extract_features(tracks_with_ids(5), spotify_params(fake, max_tries=3), tmp_path / "out")
    assert len(fake.calls_to("/v1/audio-features")) == 3
    coverage = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert coverage["pending"] == 5 and coverage["stopped"] == "unavailable"


def test_retry_after_too_long_stops_instead_of_hanging(fake, tmp_path):
    fake.script("/v1/audio-features", Fault(status=429, retry_after=86400))
    with pytest.raises(SpotifyUnavailableError, match="Retry-After"):
        extract_features(tracks_with_ids(5), spotify_params(fake, max_retry_after_s=60), tmp_path / "out")


def test_403_stops_with_plain_explanation(fake, tmp_path):
    fake.forbidden = ("/v1/audio-features",)
    with pytest.raises(SpotifyForbiddenError) as err:
        extract_features(tracks_with_ids(120), spotify_params(fake), tmp_path / "out")
    assert "2024-11-27" in str(err.value) and "features.source: columns" in str(err.value)
    assert len(fake.calls_to("/v1/audio-features")) == 1  # no retrying a 403
    coverage = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert coverage["forbidden"] == 120 and coverage["stopped"] == "forbidden"


def test_403_on_search_explains_the_fix_and_keeps_earlier_matches(fake, tmp_path):
    tracks = pd.DataFrame({"track_id": ["a", "b"], "track_sp_id": [None, None], "artist_sp_name": ["Beatles", "Abba"],
                           "track_sp_name": ["Hey Jude", "Waterloo"], "artist_wd_name": [None, None]})
    extract_features(tracks.iloc[:1], spotify_params(fake), tmp_path / "out")  # a is searched and cached
    fake.forbidden = ("/v1/search",)
    with pytest.raises(SpotifyUnavailableError) as err:
        extract_features(tracks, spotify_params(fake), tmp_path / "out")
    text = str(err.value)
    assert "403" in text and "track_sp_id" in text and "features.source: columns" in text and "cache" in text
    assert len(fake.calls_to("/v1/search")) == 2  # a once (then cached), b once: no retrying a 403


def test_null_entries_are_recorded_as_missing(fake, tmp_path):
    fake.null_ids = {synthetic_id(1), synthetic_id(3)}
    tracks = tracks_with_ids(5)
    tracks.loc[4, "track_sp_id"] = "not-a-spotify-id"
    result = extract_features(tracks, spotify_params(fake), tmp_path / "out")
    assert list(result.features.index) == ["t0", "t2"]
    assert result.coverage["missing"] == 3 and result.coverage["fetched"] == 2


def test_search_accepts_only_matches_above_threshold(fake, tmp_path):
    hey_jude, other = synthetic_id(900), synthetic_id(901)
    fake.catalogue = {hey_jude: ("The Beatles", "Hey Jude - Remastered 2015"), other: ("Beatles Tribute", "Jude")}
    tracks = pd.DataFrame({
        "track_id": ["a", "b", "c", "d"],
        "track_sp_id": [None, None, None, synthetic_id(5)],
        "artist_sp_name": ["Beatles", "Nobody Known", None, "X"],
        "track_sp_name": ["Hey Jude", "Jude", "Untitled", "Y"],
        "artist_wd_name": [None, None, None, None],
    })
    result = extract_features(tracks, spotify_params(fake, search_min_similarity=0.85), tmp_path / "out")
    status = result.status.set_index("track_id")
    assert status.loc["a", "spotify_id"] == hey_jude and status.loc["a", "match_score"] >= 0.85
    assert status.loc["b", "status"] == "no_match" and status.loc["b", "match_score"] < 0.85
    assert status.loc["c", "status"] == "missing"  # no artist: nothing to search
    assert len(fake.calls_to("/v1/search")) == 2
    assert set(result.features.index) == {"a", "d"}
    assert pd.read_parquet(tmp_path / "out" / "status.parquet")["match_score"].notna().sum() == 2


def test_similarity_normalisation():
    assert normalise_title("Beyoncé (feat. JAY-Z) - Remastered") == "beyonce"
    items = [{"id": "x", "name": "Hey Jude - 2015 Remaster", "artists": [{"name": "The Beatles"}]}]
    assert best_match("beatles", "hey jude", items) == ("x", 1.0)


def test_audio_analysis_frames(fake, tmp_path):
    from geomusic_lib.features import load_frames

    fake.null_ids = {synthetic_id(2)}
    result = extract_features(tracks_with_ids(4), spotify_params(fake, audio_analysis=True), tmp_path / "out")
    frames = load_frames(tmp_path / "out")
    assert set(frames) == {"t0", "t1", "t3"} and result.frames_dir is not None
    for array in frames.values():
        assert array.dtype.name == "float32" and array.ndim == 2 and array.shape[1] == 27
        assert 5 <= array.shape[0] <= 24


def test_missing_credentials_say_how_to_set_them(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPOTIPY_CLIENT_ID", raising=False)
    monkeypatch.delenv("SPOTIPY_CLIENT_SECRET", raising=False)
    with pytest.raises(FeatureError, match="SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET"):
        read_credentials()
    (tmp_path / ".env").write_text(f"SPOTIPY_CLIENT_ID={CLIENT_ID}\nSPOTIPY_CLIENT_SECRET={CLIENT_SECRET}\n")
    assert read_credentials() == (CLIENT_ID, CLIENT_SECRET)


def test_notice_logged_once_and_credentials_never_leak(fake, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    fake.script("/v1/audio-features", Fault(status=500))
    out = tmp_path / "out"
    extract_features(tracks_with_ids(30), spotify_params(fake), out)
    assert "Sending POST" in caplog.text  # spotipy's debug log of the token request did run
    assert sum(SPOTIFY_NOTICE in r.getMessage() for r in caplog.records) == 1
    captured = capsys.readouterr()
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    texts = [caplog.text, captured.out, captured.err]
    texts += [p.read_bytes().decode("latin-1") for p in out.rglob("*") if p.is_file()]
    for secret in (CLIENT_ID, CLIENT_SECRET, basic, TOKEN):
        assert not any(secret in text for text in texts), "a credential leaked"


def test_cache_has_one_row_per_id(fake, tmp_path):
    out = tmp_path / "out"
    for _ in range(2):
        extract_features(tracks_with_ids(120), spotify_params(fake), out)
    with sqlite3.connect(out / "cache.sqlite") as conn:
        rows = conn.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM entries").fetchone()
    assert rows == (120, 120)


def test_polite_rate_no_sleep_without_faults(fake, tmp_path):
    start = time.monotonic()
    extract_features(tracks_with_ids(300), spotify_params(fake), tmp_path / "out")
    assert time.monotonic() - start < 10


def test_rejected_credentials_give_a_clear_error(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", "wrong-secret-123")
    with pytest.raises(FeatureError, match="rejected the client credentials") as err:
        extract_features(tracks_with_ids(3), spotify_params(fake), tmp_path / "out")
    assert "wrong-secret-123" not in str(err.value)


def test_missing_credentials_fail_at_once_without_retries(fake, tmp_path, monkeypatch):
    monkeypatch.delenv("SPOTIPY_CLIENT_ID")
    monkeypatch.delenv("SPOTIPY_CLIENT_SECRET")
    start = time.monotonic()
    with pytest.raises(FeatureError, match="Spotify credentials not found: set SPOTIPY_CLIENT_ID"):
        extract_features(tracks_with_ids(5), spotify_params(fake, backoff_base_s=1.0), tmp_path / "out")
    assert time.monotonic() - start < 2
    assert fake.calls == []


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_spotipy_errors_are_quiet_without_verbose(fake, tmp_path):
    root, seen = logging.getLogger(), _Collect()  # what a root handler (the CLI's, a notebook's) receives
    root.addHandler(seen)
    level, root.level = root.level, logging.INFO
    try:
        fake.script("/v1/audio-features", Fault(status=500), Fault(status=502))
        extract_features(tracks_with_ids(30), spotify_params(fake), tmp_path / "out")
    finally:
        root.removeHandler(seen)
        root.level = level
    loud = [r for r in seen.records if r.levelno >= logging.WARNING and "HTTP Error" in r.getMessage()]
    assert loud == []  # not an ERROR line per retried request
    routed = [r for r in seen.records if r.getMessage().startswith("spotipy: HTTP Error")]
    assert len(routed) == 2 and all(r.levelno == logging.INFO and r.name == "geomusic_lib.features.spotify"
                                    for r in routed)


def test_fake_server_cli_injects_faults_and_features_cli_maps_request_flags(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    server = subprocess.Popen([sys.executable, str(repo / "tests" / "fake_spotify.py"), "--faults", "500,429,badjson",
                               "--retry-after", "0", "--latency-ms", "5", "--client-id", "id-X",
                               "--client-secret", "secret-Y"], stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        tracks_with_ids(25).to_csv(tmp_path / "tracks.csv", index=False)
        env = {"SPOTIPY_CLIENT_ID": "id-X", "SPOTIPY_CLIENT_SECRET": "secret-Y", "PATH": "/usr/bin:/bin"}
        done = subprocess.run(
            [sys.executable, "-m", "geomusic_lib", "features", "--source", "spotify", "--api-base", url,
             "--input", str(tmp_path / "tracks.csv"), "--out", str(tmp_path / "out"), "--batch-size", "10",
             "--timeout", "2", "--backoff-base", "0.01", "--backoff-max", "0.05", "--max-tries", "5"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.kill()
        server.wait()
    assert done.returncode == 0, done.stderr
    coverage = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert coverage["fetched"] == 25 and coverage["retries"] == 3 and coverage["requests"] == 6  # 3 batches of 10
    assert "HTTP Error" not in done.stderr
