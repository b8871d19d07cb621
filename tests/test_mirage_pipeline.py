"""The whole notebook pipeline on a MIRAGE-style export (the real pilot events of tests/fixtures/mirage).

The pilot export has no audio features, so this test adds random `track_sp_*` columns (the
`columns` feature source): the point is that every stage runs on MIRAGE's shape of data
(artist groups, station coordinates, region labels, tokens views), not the accuracy.
"""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from test_book import _copy_book_sources
from geomusic_lib.core import RunDir


@pytest.mark.slow
def test_notebooks_run_on_a_mirage_export_at_region_level(tmp_path, mirage_v1):
    root = _copy_book_sources(tmp_path)
    raw = pd.read_csv(mirage_v1)
    rng = np.random.default_rng(0)
    for name in ("danceability", "energy", "valence", "acousticness", "tempo", "loudness"):
        raw[f"track_sp_{name}"] = rng.normal(size=len(raw))
    (root / "data").mkdir()
    raw.to_csv(root / "data" / "MIRAGE.csv", index=False)
    smoke = yaml.safe_load((root / "params" / "smoke.yaml").read_text())
    smoke.update(run_name="mirage_smoke", models=["fcnn", "attention"],
                 data={"source": "mirage", "mirage": {"path": "data/MIRAGE.csv", "level": "region",
                                                      "min_reliability": 0.0, "min_tracks_per_class": 10}},
                 features={"source": "columns"})
    smoke["model"]["attention"]["view"] = "tokens"
    smoke["model"]["cnn"]["view"] = "tokens"
    smoke["model"]["rnn"]["view"] = "tokens"
    (root / "params" / "mirage_smoke.yaml").write_text(yaml.safe_dump(smoke))
    # 01-07: data, features, training and evaluation at region level (08 and 09 on another source: test_any_table)
    done = subprocess.run([sys.executable, "-m", "geomusic_lib", "run", "--params", "params/mirage_smoke.yaml",
                           "--only", "01,02,03,04,05,06,07", "--no-book"], cwd=root, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "skipped (not in models)" in done.stdout  # cnn and rnn are not in `models`
    run_dir = root / "runs" / "mirage_smoke"
    meta = json.loads((run_dir / "data" / "meta.json").read_text())
    assert meta["source"] == "mirage" and all(n.startswith("track_sp_") for n in meta["feature_names"])
    metrics = pd.read_csv(run_dir / "eval" / "metrics.csv")
    assert {"fcnn", "attention", "logreg"} <= set(metrics["model"])
    classes = pd.read_csv(run_dir / "data" / "classes.csv")
    assert {"Northern America", "Northern Europe"} <= set(classes["class"])


@pytest.mark.slow
def test_spotify_source_in_the_notebooks_never_shows_the_credentials(tmp_path, mirage_v1):
    """Notebooks 00-02 with `features.source: spotify` against the fake server on 127.0.0.1:
    the credentials (from the environment) appear in no executed notebook and no log."""
    from fake_spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify, synthetic_id

    root = _copy_book_sources(tmp_path)
    raw = pd.read_csv(mirage_v1)
    raw["track_sp_id"] = [synthetic_id(i % 300) for i in range(len(raw))]
    (root / "data").mkdir()
    raw.to_csv(root / "data" / "MIRAGE.csv", index=False)
    with FakeSpotify() as fake:
        smoke = yaml.safe_load((root / "params" / "smoke.yaml").read_text())
        smoke.update(run_name="spotify_smoke",
                     data={"source": "mirage", "mirage": {"path": "data/MIRAGE.csv", "min_reliability": 0.0,
                                                          "min_tracks_per_class": 10}},
                     features={"source": "spotify", "spotify": {"api_base": fake.url, "max_tries": 2}})
        (root / "params" / "spotify_smoke.yaml").write_text(yaml.safe_dump(smoke))
        env = {**__import__("os").environ, "SPOTIPY_CLIENT_ID": CLIENT_ID, "SPOTIPY_CLIENT_SECRET": CLIENT_SECRET}
        done = subprocess.run([sys.executable, "-m", "geomusic_lib", "run", "--params", "params/spotify_smoke.yaml",
                               "--only", "00,01,02", "--no-book"], cwd=root, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert fake.calls_to("/v1/audio-features")  # the real spotipy client did talk to the fake
    run_dir = root / "runs" / "spotify_smoke"
    assert len(pd.read_parquet(run_dir / "data" / "table.parquet")) > 0
    executed = (RunDir(run_dir).book_notebooks / "02_feature_extraction.ipynb").read_text(encoding="utf-8")
    assert "Developer Terms" in executed  # the notice is in the page
    written = [p for p in (root / "runs").rglob("*") if p.is_file()]  # logs and executed notebooks live in the run
    assert any(p.suffix == ".log" for p in written) and any(p.suffix == ".ipynb" for p in written)
    texts = [p.read_bytes().decode("utf-8", errors="replace") for p in written]
    texts += [done.stdout, done.stderr]
    for secret in (CLIENT_ID, CLIENT_SECRET):
        assert not any(secret in t for t in texts)
