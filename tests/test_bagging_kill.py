"""A bag killed with SIGKILL resumes exactly: finished members are reused, the interrupted one
continues from its last epoch, and the bag's OOF rows and predictions equal an uninterrupted run's.
Also: under `data.duplicates: group`, no member trains on a copy of its held-out rows."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from geomusic_lib.core import params_from_dict
from geomusic_lib.core.killpoint import HELD_FILE, HOLD_ENV
from geomusic_lib.data import make_splits, split_groups, TrackTable
from geomusic_lib.predict import read_predictions
from geomusic_lib.training.bagging import bag_rows, split_members

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    from geomusic_lib.core import params_from_dict
    from geomusic_lib.data import load_uci, make_splits
    from geomusic_lib.training import train_model
    table = load_uci()
    params = params_from_dict({"device": "cpu", "seed": 5, "model": {"fcnn": {"hidden": [16]}},
                               "train": {"epochs": 3, "batch_size": 64, "patience": 100, "threads": 1,
                                         "bagging": {"folds": 2}}})
    splits = make_splits(table.frame, params.split, params.seed)
    train_model("fcnn", table, splits, params, sys.argv[1], progress=False)
""")


def _command(tmp_path: Path, out: Path) -> list[str]:
    script = tmp_path / "bag_uci.py"
    script.write_text(SCRIPT)
    return [sys.executable, str(script), str(out)]


def _env(hold: str | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop(HOLD_ENV, None)
    return env if hold is None else {**env, HOLD_ENV: hold}


def _kill_when_held(command: list[str], hold: str, member: Path) -> None:
    """Run until the hold point writes `held` in `member`'s folder, then SIGKILL the run."""
    proc = subprocess.Popen(command, env=_env(hold), stdout=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (member / HELD_FILE).exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and (member / HELD_FILE).exists(), "the run never held there"


@pytest.mark.slow
def test_a_bag_killed_in_its_second_member_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL after epoch 2 (of 3) of member 1 (`fcnn/bag_1:2` holds in that member only); the rerun
    reuses member 0, resumes member 1 and ends where an uninterrupted run ends."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    lone = subprocess.Popen(_command(tmp_path, straight), env=_env(), stdout=subprocess.DEVNULL)  # alongside
    try:
        command = _command(tmp_path, killed)
        _kill_when_held(command, "fcnn/bag_1:2", killed / "bag_1")
        first = (killed / "bag_0" / "checkpoint_best.pt").read_bytes()
        assert torch.load(killed / "bag_1" / "checkpoint_last.pt", weights_only=True)["epoch"] == 2
        assert not (killed / "oof.parquet").exists() and not (killed / "checkpoint_best.pt").exists()
        done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"{killed / 'bag_0'}: reusing the finished training" in done.stdout
        assert f"{killed / 'bag_1'}: resuming fcnn after epoch 2" in done.stdout
        assert (killed / "bag_0" / "checkpoint_best.pt").read_bytes() == first  # reused, never retrained
        assert lone.wait(timeout=300) == 0
    finally:
        if lone.poll() is None:
            lone.kill()
    _assert_same_bag(straight, killed)


def _assert_same_bag(a: Path, b: Path) -> None:
    """Identical OOF and test probabilities, and identical weights in the two bag checkpoints."""
    for name in ("oof.parquet", "predictions.parquet"):
        pa, pb = read_predictions(a / name), read_predictions(b / name)
        assert (pa.track_ids == pb.track_ids).all()
        np.testing.assert_array_equal(pa.proba, pb.proba)
    ca, cb = (torch.load(p / "checkpoint_best.pt", weights_only=True) for p in (a, b))
    assert ca["bag_size"] == cb["bag_size"] == 2 and ca["bag_members"] == cb["bag_members"]
    for key, value in ca["state_dict"].items():
        assert torch.equal(value, cb["state_dict"][key]), key


def test_members_never_train_on_a_copy_of_their_held_out_rows():
    """`data.duplicates: group`: identical feature vectors (under different artists) stay in one fold."""
    rng = np.random.default_rng(0)
    n = 200
    features = rng.normal(size=(n, 2))
    features[100:] = features[:100]  # row 100 + i copies row i, under another artist
    frame = pd.DataFrame({"track_id": [f"t{i}" for i in range(n)], "label": rng.choice(list("abcd"), n),
                          "group": [f"artist{i // 2}" for i in range(n)], "lat": np.nan, "lon": np.nan,
                          "f0": features[:, 0], "f1": features[:, 1]})
    table = TrackTable(frame, ["f0", "f1"], source="test")
    params = params_from_dict({"train": {"bagging": {"folds": 4}}})
    (split,) = make_splits(frame, params.split, 0, identical_features=table.feature_names)
    vectors = [tuple(v) for v in features]
    artists = split_groups(frame)
    for member in split_members(table, split, params):
        assert sorted(np.r_[member.train, member.val]) == sorted(bag_rows(split))
        assert not {vectors[i] for i in member.train} & {vectors[i] for i in member.val}
        assert not set(artists[member.train]) & set(artists[member.val])
