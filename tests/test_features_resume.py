"""Kill the CLI with SIGKILL at random moments, resume, and get the same table as an uninterrupted run."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from fake_spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify, synthetic_id

REPO = Path(__file__).resolve().parents[1]
N_TRACKS = 3000


def write_tracks(path: Path) -> None:
    ids = [synthetic_id(i) for i in range(N_TRACKS)]
    frame = pd.DataFrame({"track_id": [f"t{i:05d}" for i in range(N_TRACKS)], "track_sp_id": ids,
                          "artist_sp_name": "A", "track_sp_name": "B"})
    frame.loc[::300, "track_sp_id"] = None  # ten rows go through search
    frame.to_parquet(path)


def cli(fake: FakeSpotify, tracks: Path, out: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "SPOTIPY_CLIENT_ID": CLIENT_ID, "SPOTIPY_CLIENT_SECRET": CLIENT_SECRET,
           "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "geomusic_lib", "features", "--input", str(tracks), "--source", "spotify",
               "--out", str(out), "--api-base", fake.url, "--sample-size", "2500", "--seed", "7"]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cached_rows(out: Path) -> int:
    if not (out / "cache.sqlite").exists():
        return 0
    with sqlite3.connect(out / "cache.sqlite") as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def kill_early(proc: subprocess.Popen, rng: random.Random) -> int:
    """SIGKILL during start-up (imports, token, search)."""
    time.sleep(rng.uniform(0.1, 1.0))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return 0


def kill_after_rows(proc: subprocess.Popen, out: Path, target: int, rng: random.Random) -> int:
    """SIGKILL a random moment after the cache holds `target` rows: mid-batch or mid-commit."""
    deadline = time.monotonic() + 60
    while cached_rows(out) < target and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.06))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return cached_rows(out)


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    tracks = tmp_path / "tracks.parquet"
    write_tracks(tracks)
    rng = random.Random(0)
    with FakeSpotify(latency_s=0.05) as fake:
        fake.catalogue = {synthetic_id(10_000): ("A", "B")}
        reference = cli(fake, tracks, tmp_path / "reference", tmp_path)
        out, err = reference.communicate(timeout=120)
        assert reference.returncode == 0, err
        total = cached_rows(tmp_path / "reference")
        killed_at = [kill_early(cli(fake, tracks, tmp_path / "resumed", tmp_path), rng)]
        for target in sorted(rng.sample(range(50, total - 150), 4)):
            proc = cli(fake, tracks, tmp_path / "resumed", tmp_path)
            killed_at.append(kill_after_rows(proc, tmp_path / "resumed", target, rng))
        final = cli(fake, tracks, tmp_path / "resumed", tmp_path)
        out, err = final.communicate(timeout=120)
        assert final.returncode == 0, err
    assert killed_at == sorted(killed_at), "the cache only grows"
    assert sum(0 < n < total for n in killed_at) >= 3, f"kills should land mid-run: {killed_at}"
    expected = pd.read_parquet(tmp_path / "reference" / "features.parquet")
    resumed = pd.read_parquet(tmp_path / "resumed" / "features.parquet")
    pd.testing.assert_frame_equal(resumed, expected)
    assert len(expected) == 2500 - expected.index.duplicated().sum() and not resumed.index.duplicated().any()
    assert cached_rows(tmp_path / "resumed") == cached_rows(tmp_path / "reference")
    for text in (out, err):
        assert CLIENT_SECRET not in text and CLIENT_ID not in text
    print("cache rows after each kill:", killed_at)
