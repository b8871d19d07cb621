"""The trainer on real UCI rows: learning, checkpoints, exact resume, and clear errors."""
from __future__ import annotations

import os
import runpy
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

import geomusic_lib.training.trainer as train_mod
from geomusic_lib.data import Split, load_uci, make_splits
from geomusic_lib.predict import batch_probabilities, PredictionError, Predictor, read_predictions
from geomusic_lib.models import CheckpointError, load_checkpoint, model_from_checkpoint
from geomusic_lib.core import params_from_dict
from geomusic_lib.training import train_model

ROOT = Path(__file__).resolve().parents[1]


def _params(tmp_path: Path, **train):
    return params_from_dict({"runs_dir": str(tmp_path), "device": "cpu", "seed": 3,
                             "model": {"fcnn": {"hidden": [64, 32]}},
                             "train": {"epochs": 6, "batch_size": 64, "patience": 50, "bagging": {"folds": 1}, **train}})  # one model per split


@pytest.fixture(scope="module")
def uci():
    table = load_uci(collapse_chroma=False)  # the file's 116 columns: the trainer's thresholds were set on them
    return table, make_splits(table.frame, params_from_dict({}).split, seed=3)


def test_training_lowers_the_loss_on_uci(uci, tmp_path):
    table, splits = uci
    result = train_model("fcnn", table, splits, _params(tmp_path, lr=3e-3), tmp_path / "fcnn", progress=False)
    history = pd.read_csv(tmp_path / "fcnn" / "history.csv")
    assert len(history) == 6
    assert history["train_loss"].iloc[-1] < 0.9 * history["train_loss"].iloc[0]
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0]
    pred = read_predictions(result.predictions)
    assert len(pred.y_true) == len(splits[0].test)
    np.testing.assert_allclose(pred.proba.sum(1), 1.0, rtol=1e-5)
    assert (pred.proba.argmax(1) == pred.y_true).mean() > 3 / 33  # well above chance after 6 epochs


def test_checkpoint_is_self_contained_and_loads_with_weights_only(uci, tmp_path):
    table, splits = uci
    train_model("cnn", table, splits, _params(tmp_path, epochs=2), tmp_path / "cnn", progress=False)
    raw = torch.load(tmp_path / "cnn" / "checkpoint_best.pt", weights_only=True)
    for key in ("model_config", "state_dict", "classes", "class_lat", "class_lon", "feature_names", "view",
                "grid_shape", "norm_mean", "norm_std", "params", "epoch", "optimizer_state", "rng_state", "history"):
        assert key in raw, key
    assert raw["classes"] == table.classes() and raw["feature_names"] == table.feature_names
    model = model_from_checkpoint(load_checkpoint(tmp_path / "cnn" / "checkpoint_best.pt"))
    x = (table.features - np.asarray(raw["norm_mean"], dtype=np.float32)) / np.asarray(raw["norm_std"], dtype=np.float32)
    from geomusic_lib.data import make_view
    proba = batch_probabilities(model, make_view(raw["view"], x, raw["grid_shape"]), splits[0].test)
    stored = read_predictions(tmp_path / "cnn" / "predictions.parquet").proba
    np.testing.assert_allclose(proba, stored, atol=1e-6)
    with pytest.raises(PredictionError, match=f"trained on {len(table.feature_names)}"):
        Predictor.from_dict(raw, device="cpu").predict(np.zeros((2, 68)))


def test_corrupt_or_missing_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "checkpoint_best.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(CheckpointError, match="checkpoint_best.pt: not a readable geomusic checkpoint"):
        load_checkpoint(bad)
    torch.save({"hello": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match="not a geomusic checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_bad_inputs_are_clear_errors(uci, tmp_path):
    table, splits = uci
    params = _params(tmp_path, epochs=1)
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        train_model("svm", table, splits, params, tmp_path / "x", progress=False)
    empty = [Split(-1, np.array([], dtype=int), splits[0].val, splits[0].test)]
    with pytest.raises(ValueError, match="training split of fold -1 is empty"):
        train_model("fcnn", table, empty, params, tmp_path / "x", progress=False)
    broken = type(table)(table.frame.copy(), table.feature_names, table.source, grid_shape=table.grid_shape)
    broken.frame.loc[5, "s2_chroma03"] = np.nan
    broken.frame.loc[7, "s1_timbre01"] = np.inf
    with pytest.raises(ValueError, match=r"NaN or infinite.*s1_timbre01.*s2_chroma03"):
        train_model("fcnn", broken, splits, params, tmp_path / "x", progress=False)


def test_interrupted_training_resumes_to_the_same_result(uci, tmp_path, monkeypatch):
    """In-process: an exception after epoch 3 (as a kill would), then the same call again."""
    table, splits = uci
    params = _params(tmp_path, epochs=6, batch_size=32, scheduler="plateau")
    train_model("fcnn", table, splits, params, tmp_path / "straight", progress=False)

    real_write, calls = train_mod._write_history, {"n": 0}

    def dying_write(history, path):
        real_write(history, path)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_write_history", dying_write)
    with pytest.raises(KeyboardInterrupt):
        train_model("fcnn", table, splits, params, tmp_path / "resumed", progress=False)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint_last.pt")["epoch"] == 3
    monkeypatch.setattr(train_mod, "_write_history", real_write)
    train_model("fcnn", table, splits, params, tmp_path / "resumed", progress=False)
    _assert_same_run(tmp_path / "straight", tmp_path / "resumed")


def _assert_same_run(a: Path, b: Path) -> None:
    ca, cb = (load_checkpoint(p / "checkpoint_last.pt") for p in (a, b))
    assert ca["epoch"] == cb["epoch"]
    for key, value in ca["state_dict"].items():
        assert torch.equal(value, cb["state_dict"][key]), key
    pd.testing.assert_frame_equal(pd.read_csv(a / "history.csv").drop(columns="seconds"),
                                  pd.read_csv(b / "history.csv").drop(columns="seconds"))
    np.testing.assert_array_equal(read_predictions(a / "predictions.parquet").proba,
                                  read_predictions(b / "predictions.parquet").proba)


SCRIPT = textwrap.dedent("""
    import sys
    from geomusic_lib.data import load_uci, make_splits
    from geomusic_lib.core import params_from_dict
    from geomusic_lib.training import train_model


    def train(out):
        table = load_uci()
        params = params_from_dict({"device": "cpu", "seed": 5, "split": {"strategy": "kfold", "folds": 2},
                                   "train": {"epochs": 4, "batch_size": 16, "patience": 100, "bagging": {"folds": 1}}})
        splits = make_splits(table.frame, params.split, params.seed)
        train_model("fcnn", table, splits, params, out, progress=False)


    if __name__ == "__main__":
        train(sys.argv[1])
""")


@pytest.mark.slow
def test_killed_subprocess_resumes_to_the_same_result(tmp_path):
    """SIGKILL a training subprocess once the first checkpoint exists, rerun it, compare with an uninterrupted run.

    The uninterrupted run is the same script's `train` called in this process (one interpreter start
    fewer; the trainer picks one thread for this small model either way). Four epochs per fold are
    enough: the kill lands in fold 0 right after its first epoch, seven epochs before the end, and the
    rerun must redo the rest of fold 0 and all of fold 1 bit for bit."""
    script = tmp_path / "train_uci.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    runpy.run_path(str(script), run_name="straight")["train"](tmp_path / "straight")

    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "killed")], env=env)
    first = tmp_path / "killed" / "fold_0" / "checkpoint_last.pt"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert not (tmp_path / "killed" / "predictions.parquet").exists()
    subprocess.run([sys.executable, str(script), str(tmp_path / "killed")], env=env, check=True, timeout=600)
    for fold in ("fold_0", "fold_1"):
        _assert_same_run_fold(tmp_path / "straight" / fold, tmp_path / "killed" / fold)
    np.testing.assert_array_equal(read_predictions(tmp_path / "straight" / "predictions.parquet").proba,
                                  read_predictions(tmp_path / "killed" / "predictions.parquet").proba)


def _assert_same_run_fold(a: Path, b: Path) -> None:
    ca, cb = (load_checkpoint(p / "checkpoint_last.pt") for p in (a, b))
    assert ca["epoch"] == cb["epoch"]
    for key, value in ca["state_dict"].items():
        assert torch.equal(value, cb["state_dict"][key]), key


def test_checkpoint_normalisation_comes_from_training_rows_only(tmp_path):
    import torch

    from geomusic_lib.data import load_uci, make_splits
    from geomusic_lib.core import params_from_dict
    from geomusic_lib.training import train_model

    table = load_uci()
    params = params_from_dict({"seed": 0, "train": {"epochs": 1, "bagging": {"folds": 1}}, "model": {"fcnn": {"hidden": [8]}}})
    (split,) = make_splits(table.frame, params.split, params.seed)
    rows = table.frame.index[np.r_[split.val, split.test]]
    table.frame.loc[rows, table.feature_names] += 1000.0  # val/test rows far away: must not move the statistics
    result = train_model("fcnn", table, [split], params, tmp_path, progress=False)
    ckpt = torch.load(result.folds[0].checkpoint, weights_only=True)
    np.testing.assert_allclose(np.asarray(ckpt["norm_mean"]), table.features[split.train].mean(axis=0), rtol=1e-4, atol=1e-4)
