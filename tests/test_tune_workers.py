"""Tuning across workers: two `geomusic tune --worker` processes share one study, on a journal file
and on a real PostgreSQL server, finish its budget together with no trial repeated, and lose
nothing when one of them is killed (kill -9); credentials in the URL reach no output or file."""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from geomusic_lib.core import params_from_dict, RunDir
from geomusic_lib.core.killpoint import HOLD_ENV
from geomusic_lib.core.params import ParamsError
from geomusic_lib.pipeline import stages
from geomusic_lib.training import trials_table
from geomusic_lib.training.tune import current_settings, storage_of
from geomusic_lib.training.tune_storage import expand, masked, StorageError

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 6
PASSWORD_VAR = "GEOMUSIC_TEST_PG_PASSWORD"


def worker_params(runs_dir: Path, storage: str) -> dict:
    """A small UCI run whose FCNN trials (one epoch, one thread) take well under a second."""
    return {"runs_dir": str(runs_dir), "run_name": "shared", "device": "cpu", "seed": 3,
            "data": {"uci": {"chromatic": False}, "max_tracks": 300}, "models": ["fcnn"], "baselines": ["majority"],
            "train": {"epochs": 1, "batch_size": 64, "threads": 1},
            "tune": {"enabled": True, "trials": BUDGET, "startup_trials": 2, "warmup_epochs": 1, "storage": storage}}


def _reader(params, run: RunDir):
    """A function that returns the model's study once a worker has created it (else None)."""
    import optuna

    from geomusic_lib.training.tune_storage import open_storage

    store = storage_of(run, "fcnn", params)
    storage, found = open_storage(store, 60), []

    def study():
        if not found:
            try:
                found.append(optuna.load_study(study_name=store.study_name, storage=storage))
            except KeyError:  # not created yet
                return None
        return found[0]
    return study


def _start(params_file: Path, log: Path, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "geomusic_lib", "tune", "--params", str(params_file), "--model", "fcnn",
           "--worker"]
    with log.open("w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def _wait_for(condition, what: str, proc: subprocess.Popen, seconds: float = 120):
    """Poll `condition()` until it returns something truthy (its value), while `proc` lives."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        found = condition()
        if found:
            return found
        time.sleep(0.3)
    pytest.fail(f"{what} did not happen (exit code {proc.poll()})")


def _trials_of(read, proc: subprocess.Popen, state: str) -> list:
    study = read()
    return [t for t in (study.get_trials(deepcopy=False) if study else [])
            if t.user_attrs.get("worker", "").endswith(f":{proc.pid}") and t.state.name == state]


def share_and_kill(tmp_path: Path, storage: str, env_extra: dict | None = None) -> tuple[list, str]:
    """Two workers on one study: the victim holds inside its first trial (GEOMUSIC_HOLD_AFTER), the
    survivor joins and runs trials beside it, then the victim is killed -9. Returns the stored trials
    and both outputs."""
    raw = worker_params(tmp_path / "runs", storage)
    params_file = tmp_path / "workers.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    params = params_from_dict(raw)
    run = RunDir(params.run_dir)
    stages.prepare_data(params, run)
    read = _reader(params, run)
    env = {**os.environ, "TQDM_DISABLE": "1", **(env_extra or {})}
    env.pop(HOLD_ENV, None)
    victim, survivor = _start(params_file, tmp_path / "b.log", {**env, HOLD_ENV: "fcnn:1"}), None
    try:
        held = _wait_for(lambda: _trials_of(read, victim, "RUNNING"), "the victim's held trial", victim)[0].number
        survivor = _start(params_file, tmp_path / "a.log", env)
        complete = _wait_for(lambda: _trials_of(read, survivor, "COMPLETE"), "a trial of the survivor", survivor)
        assert all(t.number != held for t in complete)  # the survivor left the victim's trial alone
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        assert survivor.wait(timeout=120) == 0, (tmp_path / "a.log").read_text()[-2000:]
    finally:
        for proc in (survivor, victim):
            if proc is not None and proc.poll() is None:
                proc.kill()
    trials = read().trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == BUDGET  # the budget was finished together, and no more
    assert trials[held].state.name == "FAIL"  # the killed worker's trial never counts...
    assert [t.user_attrs.get("retry_of") for t in finished].count(held) == 1  # ...and was re-run once
    assert len({t.number for t in finished}) == BUDGET
    settings = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(settings)) == BUDGET, "two finished trials share their settings"
    first = tuple(sorted(current_settings("fcnn", params).items()))
    assert settings.count(first) == 1  # trial 0, the params file's settings, ran once
    assert trials[held].user_attrs["worker"].endswith(f":{victim.pid}")  # one study, two workers
    best = json.loads(run.tuning_best("fcnn").read_text())
    assert best["trials_complete"] + best["trials_pruned"] == BUDGET
    assert len(trials_table(run, "fcnn")) == len(trials)  # the notebooks read the study back
    return trials, (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()


def test_two_workers_share_a_journal_study_and_survive_a_kill(tmp_path):
    share_and_kill(tmp_path, "journal")
    assert RunDir(tmp_path / "runs" / "shared").tuning_journal("fcnn").is_file()


# --------------------------------------------------------------------------- PostgreSQL
def _unavailable(reason: str) -> None:
    """Skip here; fail in CI, where .ci/run installs the server."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL test cannot run in CI: {reason}")
    pytest.skip(reason)


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    path = found[-1] if found else shutil.which("initdb")
    return Path(path).parent if path else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 (password login); yields (port, password)."""
    try:
        import pg8000  # noqa: F401
    except ImportError:
        _unavailable("the pg8000 driver is not installed (pip install 'geomusic[postgres]')")
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("PostgreSQL's server binaries are not installed (apt-get install postgresql; .ci/run does)")
    base, password, port = Path(tempfile.mkdtemp(prefix="geomusic_pg_")), secrets.token_hex(12), _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        if user is None or not shutil.which("runuser"):
            _unavailable("running as root without a postgres or nobody user and runuser to start the server")
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", user, "--"]
    (base / "pw").write_text(password)
    os.chmod(base / "pw", 0o644)
    data, opts = base / "data", f"-k {base} -h 127.0.0.1 -p {port} -F"
    steps = [[str(bindir / "initdb"), "-D", str(data), "-U", "tuner", "-A", "scram-sha-256", f"--pwfile={base / 'pw'}",
              "--no-sync", "-E", "UTF8"],
             [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-o", opts, "-w", "start"],
             [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "tuner", "geomusic"]]
    try:
        for step in steps:
            done = subprocess.run(as_user + step, capture_output=True, text=True, timeout=60,
                                  env={**os.environ, "PGPASSWORD": password})
            if done.returncode != 0:
                _unavailable(f"{Path(step[0]).name} failed: {(done.stderr or done.stdout).strip()[-300:]}")
        yield port, password
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def test_two_workers_share_a_postgresql_study_and_never_show_its_password(tmp_path, postgres):
    port, password = postgres
    url = f"postgresql+pg8000://tuner:${{{PASSWORD_VAR}}}@127.0.0.1:{port}/geomusic"
    os.environ[PASSWORD_VAR] = password  # the test process reads the study too
    try:
        trials, output = share_and_kill(tmp_path, url, {PASSWORD_VAR: password})
    finally:
        os.environ.pop(PASSWORD_VAR, None)
    assert "tuner:***@127.0.0.1" in output and password not in output
    for path in (tmp_path / "runs").rglob("*"):
        assert not path.is_file() or password.encode() not in path.read_bytes(), path
    assert {t.user_attrs["worker"].rpartition(":")[0] for t in trials if "worker" in t.user_attrs} == {
        socket.gethostname()}


# --------------------------------------------------------------------------- storage options
@pytest.mark.parametrize("url", ["postgresql://tuner:hunter2@db/geo", "postgresql://tuner:pre${PW}hunter2@db/geo",
                                 "postgresql+pg8000://tuner@db/geo?password=hunter2"])
def test_a_password_in_the_params_file_is_refused_without_echoing_it(url):
    with pytest.raises(ParamsError, match=r"tune.storage holds a password.*\$\{VAR\}") as err:
        params_from_dict({"tune": {"storage": url}})
    assert "hunter2" not in str(err.value)
    params_from_dict({"tune": {"storage": "postgresql+pg8000://tuner:${PW}@db/geo"}})  # from the environment


def test_storage_urls_expand_from_the_environment_and_show_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMUSIC_TEST_PW", "p@ss/word")
    url = expand("postgresql+pg8000://tuner:${GEOMUSIC_TEST_PW}@db.lan:5432/geo")
    assert url == "postgresql+pg8000://tuner:p%40ss%2Fword@db.lan:5432/geo"  # URL-encoded
    assert masked(url) == "postgresql+pg8000://tuner:***@db.lan:5432/geo"
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GEOMUSIC_TEST_URL=postgresql://u:secret@h/d\n")
    assert expand("${GEOMUSIC_TEST_URL}") == "postgresql://u:secret@h/d"
    with pytest.raises(StorageError, match=r"\$\{GEOMUSIC_TEST_UNSET\} is not set; export GEOMUSIC_TEST_UNSET"):
        expand("postgresql://u:${GEOMUSIC_TEST_UNSET}@h/d")
    params = params_from_dict({"runs_dir": str(tmp_path), "tune": {"storage": "shared/journal.log"}})
    store = storage_of(RunDir(params.run_dir), "fcnn", params)
    assert (store.kind, store.study_name) == ("journal", "default/fcnn") and Path(store.target).is_absolute()


def test_the_worker_command_names_what_is_missing(tmp_path, capsys):
    from geomusic_lib.pipeline.tune_cli import main

    raw = worker_params(tmp_path / "runs", "sqlite")
    (tmp_path / "sqlite.yaml").write_text(yaml.safe_dump(raw))
    assert main(["--params", str(tmp_path / "sqlite.yaml"), "--worker"]) == 2
    assert "tune.storage is sqlite" in capsys.readouterr().err
    raw["tune"]["storage"] = "journal"
    (tmp_path / "journal.yaml").write_text(yaml.safe_dump(raw))
    assert main(["--params", str(tmp_path / "journal.yaml"), "--worker"]) == 2
    err = capsys.readouterr().err
    assert "no prepared data" in err and "--only 01,02" in err and err.count("\n") == 1
