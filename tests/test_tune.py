"""Tuning as a stage: studies stored per model in SQLite under the run (`tune.storage: sqlite`, the
default; shared storages: test_tune_workers.py), the best settings applied by the model stages,
validation rows only, and a killed tuning run that resumes without repeating a trial."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from geomusic_lib.pipeline import stages
from geomusic_lib.core import params_from_dict, RunDir
from geomusic_lib.training import trials_table, tuned_params, tuning_summary

ROOT = Path(__file__).resolve().parents[1]


def tune_params(runs_dir: Path, trials: int = 3, **extra) -> dict:
    """A small UCI run (300 tracks, 68 features) whose FCNN trials take a few seconds."""
    return {"runs_dir": str(runs_dir), "run_name": "tuned", "device": "cpu", "seed": 1,
            "data": {"uci": {"chromatic": False}, "max_tracks": 300}, "models": ["fcnn"],
            "baselines": ["majority", "random_forest"],
            "train": {"epochs": 3, "batch_size": 64, "threads": 1},
            "tune": {"enabled": True, "trials": trials, "startup_trials": 2, "warmup_epochs": 1}, **extra}


def stored_trials(db: Path) -> list[tuple[int, str]]:
    """(number, state) of every trial in an Optuna SQLite file, read with sqlite3 alone."""
    with sqlite3.connect(db) as con:
        return con.execute("SELECT number, state FROM trials ORDER BY number").fetchall()


def stored_trials_so_far(db: Path) -> list[tuple[int, str]]:
    """`stored_trials` while Optuna may still be creating the file's tables (none yet: no trials)."""
    try:
        return stored_trials(db)
    except sqlite3.OperationalError:  # the file exists, its tables not yet
        return []


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    params = params_from_dict(tune_params(tmp_path_factory.mktemp("runs")))
    run = RunDir(params.run_dir)
    stages.prepare_data(params, run)
    summary = stages.tune_models(params, run)
    return params, run, summary


def test_tuning_stores_a_study_per_model_and_the_best_settings(tuned_run):
    params, run, summary = tuned_run
    assert list(summary["model"]) == ["fcnn", "random_forest"]
    for name in ("fcnn", "random_forest"):
        assert len(stored_trials(run.tuning_db(name))) == 3
        best = json.loads(run.tuning_best(name).read_text())
        assert best["trials_complete"] + best["trials_pruned"] == 3 and best["metric"] == "held-out log-loss"
        assert best["storage"] == {"kind": "sqlite", "spec": "sqlite", "study": name,
                                   "shown": str(run.tuning_db(name))}  # tune.storage's default: as before
    table = trials_table(run, "fcnn")
    assert len(table) == 3 and {"trial", "state", "held-out log-loss", "lr", "width"} <= set(table.columns)
    assert table.equals(trials_table(run, "fcnn", params))  # found from the params, or from best_params.json
    first = table.iloc[0]  # the params file's own settings come first: tuning must beat them
    assert (first["width"], first["layers"], first["dropout"], first["lr"], first["weight_decay"]) == (
        512, 2, 0.5, 0.001, 0.05)
    assert trials_table(run, "random_forest").iloc[0]["n_estimators"] == 500
    assert len(tuning_summary(run)) == 2


def test_the_model_stages_use_the_tuned_settings(tuned_run):
    params, run, _ = tuned_run
    best = json.loads(run.tuning_best("fcnn").read_text())
    tuned = tuned_params(params, run, ["fcnn", "random_forest"])
    assert tuned.train_for("fcnn").lr == pytest.approx(best["settings"]["lr"])
    assert tuned.model.fcnn.hidden[0] == best["settings"]["width"]
    forest = json.loads(run.tuning_best("random_forest").read_text())
    assert tuned.baseline_settings["random_forest"] == forest["overrides"]["baseline_settings"]["random_forest"]
    off = params.model_copy(update={"tune": params.tune.model_copy(update={"enabled": False})})
    assert tuned_params(off, run, ["fcnn"]) is off
    stages.tune_models(params, run, ["fcnn"])  # the budget is spent: nothing new runs
    assert len(stored_trials(run.tuning_db("fcnn"))) == 3


def test_tuning_needs_validation_rows(tmp_path):
    """One model per split (bagging.folds 1) early-stops and scores trials on split.val rows alone."""
    raw = tune_params(tmp_path, split={"train": 0.8, "val": 0.0, "test": 0.2})
    raw["train"]["bagging"] = {"folds": 1}
    params = params_from_dict(raw)
    run = RunDir(params.run_dir)
    stages.prepare_data(params, run)
    with pytest.raises(ValueError, match="validation rows.*split.val"):
        stages.tune_models(params, run, ["fcnn"])


def test_trials_with_tune_folds_are_scored_out_of_fold_on_every_training_row(tmp_path):
    """tune.folds k: k parts per split, each held out once, covering its training and validation rows
    and never a test row; a study scored one way is not silently resumed another way."""
    from geomusic_lib.data import load_run_data
    from geomusic_lib.training.bagging import bag_rows
    from geomusic_lib.training.tune import trial_splits, tune_folds

    params = params_from_dict(tune_params(tmp_path, trials=1, tune={"enabled": True, "trials": 1, "folds": 3}))
    run = RunDir(params.run_dir)
    stages.prepare_data(params, run)
    data = load_run_data(run)
    parts = trial_splits(data, params)
    assert [p.fold for p in parts] == [0, 1, 2] and all(len(p.test) == 0 for p in parts)
    held = np.sort(np.concatenate([p.val for p in parts]))
    np.testing.assert_array_equal(held, bag_rows(data.splits[0]))  # every training row once
    assert not set(held) & set(data.splits[0].test)
    assert all(not set(p.train) & set(p.val) for p in parts)
    assert tune_folds(params_from_dict({"train": {"bagging": {"folds": 4}}}), 10**6) == 4  # auto follows the bag
    assert tune_folds(params_from_dict({}), 1059) == 5 and tune_folds(params_from_dict({}), 10**6) == 1
    stages.tune_models(params, run, ["random_forest"])
    assert json.loads(run.tuning_best("random_forest").read_text())["scored_on"] == "1 split(s), 3 out-of-fold parts each"
    other = params.model_copy(update={"tune": params.tune.model_copy(update={"folds": 1, "trials": 2})})
    with pytest.raises(ValueError, match="scored on 1 split.*3 out-of-fold parts.*delete that file"):
        stages.tune_models(other, run, ["random_forest"])


def test_a_budget_is_required():
    with pytest.raises(Exception, match="tune.trials and tune.timeout_s are both null"):
        params_from_dict({"tune": {"trials": None, "timeout_s": None}})


SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_tune import tune_params
    from geomusic_lib.pipeline import stages
    from geomusic_lib.core import params_from_dict
    from geomusic_lib.core import RunDir
    params = params_from_dict(tune_params(Path(sys.argv[1]), trials=int(sys.argv[2])))
    run = RunDir(params.run_dir)
    if not run.splits.is_file():
        stages.prepare_data(params, run)
    stages.tune_models(params, run, ["fcnn"])
""")


@pytest.mark.slow
def test_killed_tuning_resumes_from_the_stored_trials(tmp_path):
    script = tmp_path / "tune_fcnn.py"
    script.write_text(SCRIPT.format(tests=str(ROOT / "tests")))
    db = RunDir(tmp_path / "runs" / "tuned").tuning_db("fcnn")
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "runs"), "8"], env=env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if db.is_file() and sum(state == "COMPLETE" for _, state in stored_trials_so_far(db)) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the tuning run ended before it could be killed; make its trials slower"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = stored_trials(db)
    finished_before = [n for n, state in before if state in ("COMPLETE", "PRUNED")]
    assert 2 <= len(finished_before) < 8
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "runs"), "8"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    after = stored_trials(db)
    assert after[:len(before)] == [(n, "FAIL" if s == "RUNNING" else s) for n, s in before]  # kept as they were
    finished = [n for n, state in after if state in ("COMPLETE", "PRUNED")]
    assert len(finished) == 8  # the budget counts the stored trials: 8 in all, none repeated
    assert f"{8 - len(finished_before)} new trial(s)" in done.stdout
    settings = [tuple(sorted(row.items())) for row in trials_table(RunDir(db.parents[2]), "fcnn")
                .drop(columns=["trial", "state", "held-out log-loss", "seconds"]).to_dict("records")]
    assert len(set(settings)) == len(settings), "a resumed study proposed a stored trial's settings again"


def test_tuned_tree_settings_keep_the_params_files_max_train_rows(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import numpy as np
    import optuna

    from geomusic_lib.training import tune
    from geomusic_lib.data import Split

    raw = tune_params(tmp_path / "runs", baselines=["majority", "random_forest", "hist_gb"],
                      baseline_settings={"random_forest": {"max_train_rows": 123, "n_estimators": 50},
                                         "hist_gb": {"max_train_rows": 77}})
    raw["train"]["bagging"] = {"folds": 1}  # one fit per trial on the split's training rows
    params, run = params_from_dict(raw), RunDir(tmp_path / "runs" / "tuned")
    best = {"n_estimators": 200, "max_features": 0.3, "min_samples_leaf": 4}
    seen = []
    monkeypatch.setattr(tune, "fit_baseline", lambda name, seed, x, y, settings: seen.append(settings))
    monkeypatch.setattr(tune, "baseline_proba", lambda fitted, x, n: np.full((len(x), n), 1 / n))
    table = SimpleNamespace(frame=range(6), features=np.zeros((6, 2)), label_indices=lambda: np.array([0, 1] * 3), classes=lambda: ["a", "b"])
    data = SimpleNamespace(table=table, splits=[Split(-1, np.arange(4), np.arange(4, 6), np.array([], dtype=int))])
    tune._baseline_objective("random_forest", params, data)(optuna.trial.FixedTrial(best))
    assert seen == [{"max_train_rows": 123, **best}]  # trials fit on the bounded subsample too
    run.tuning_best("random_forest").parent.mkdir(parents=True)
    run.tuning_best("random_forest").write_text(json.dumps({"overrides": tune.overrides_of("random_forest", best)}))
    tuned = tuned_params(params, run, ["random_forest", "hist_gb"]).baseline_settings
    assert tuned["random_forest"] == {"max_train_rows": 123, **best} and tuned["hist_gb"] == {"max_train_rows": 77}
