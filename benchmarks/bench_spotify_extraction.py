"""Batched vs per-track Spotify extraction against the fake API with added latency.

    .venv/bin/python benchmarks/bench_spotify_extraction.py [--tracks 20000] [--latency-ms 50]

Prints requests per track, tracks per second, and the projected time for MIRAGE's 414,886
unique tracks, for our batched extractor and for the seed's per-track approach (one search
plus one audio-features call per track; run on a subset, since it is ~200x slower).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify, synthetic_id  # noqa: E402

from geomusic_lib.features import extract_features  # noqa: E402
from geomusic_lib.features import RetryPolicy, make_client  # noqa: E402
from geomusic_lib.core import FeatureParams  # noqa: E402

MIRAGE_TRACKS = 414_886


def batched(fake: FakeSpotify, n: int, out_dir: Path) -> tuple[int, float]:
    tracks = pd.DataFrame({"track_id": [f"t{i}" for i in range(n)], "track_sp_id": [synthetic_id(i) for i in range(n)]})
    params = FeatureParams(source="spotify")
    params.spotify.api_base = fake.url
    fake.calls.clear()
    start = time.perf_counter()
    result = extract_features(tracks, params, out_dir)
    seconds = time.perf_counter() - start
    assert result.coverage["with_features"] == n, result.coverage
    return len(fake.calls), seconds


def per_track(fake: FakeSpotify, n: int) -> tuple[int, float]:
    """The seed's approach: search by artist + title, then audio_features for that one id."""
    params = FeatureParams(source="spotify").spotify.model_copy(update={"api_base": fake.url})
    client, policy = make_client(params), RetryPolicy.from_params(params)
    fake.catalogue = {synthetic_id(i): (f"Artist {i}", f"Title {i}") for i in range(n)}
    fake.calls.clear()
    start = time.perf_counter()
    for i in range(n):
        found = policy.call(lambda: client.search(f'track:"Title {i}" artist:"Artist {i}"', limit=1), "search")
        sp_id = found["tracks"]["items"][0]["id"]
        policy.call(lambda: client._get("audio-features", ids=sp_id), "audio-features")
    return len(fake.calls), time.perf_counter() - start


def report(name: str, n: int, requests: int, seconds: float) -> None:
    rate = n / seconds
    projected = MIRAGE_TRACKS / rate
    print(f"{name:<28} tracks={n:>6}  requests={requests:>6}  requests/track={requests / n:.4f}  "
          f"tracks/s={rate:,.1f}  projected 414,886 tracks: {projected / 60:,.1f} min ({projected / 3600:.2f} h)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--per-track-tracks", type=int, default=200, help="subset for the slow per-track run")
    args = parser.parse_args()
    os.environ.setdefault("SPOTIPY_CLIENT_ID", CLIENT_ID)
    os.environ.setdefault("SPOTIPY_CLIENT_SECRET", CLIENT_SECRET)
    print(f"fake Spotify API on 127.0.0.1 with {args.latency_ms:.0f} ms added latency per request")
    with FakeSpotify(latency_s=args.latency_ms / 1000) as fake, tempfile.TemporaryDirectory() as tmp:
        requests, seconds = batched(fake, args.tracks, Path(tmp) / "batched")
        report("batched (100 ids/request)", args.tracks, requests, seconds)
        batched_rpt = requests / args.tracks
        requests, seconds = per_track(fake, args.per_track_tracks)
        report("per-track (search+features)", args.per_track_tracks, requests, seconds)
    print(f"target: <= 0.011 requests/track -> {'met' if batched_rpt <= 0.011 else 'NOT met'}")


if __name__ == "__main__":
    main()
