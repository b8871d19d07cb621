"""One process per run directory: refusal, stale-lock takeover, re-entrance and child processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from geomusic_lib.core import ENV_VAR, LOCK_FILE, RunLock, RunLockError, read_lock_info

REPO = Path(__file__).resolve().parents[1]

HOLDER = textwrap.dedent("""
    import sys, time
    from geomusic_lib.core import RunLock
    with RunLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def clean_env() -> dict[str, str]:
    """The environment of an unrelated process: no inherited lock token."""
    return {k: v for k, v in os.environ.items() if k != ENV_VAR}


@pytest.fixture
def holder(tmp_path):
    """A separate process holding `tmp_path/run` for up to 60 s."""
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir), "60"], cwd=REPO, env=clean_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield run_dir, proc
    proc.kill()
    proc.wait()


def test_second_process_is_refused_at_once_with_the_holders_pid(holder):
    run_dir, proc = holder
    before = (run_dir / LOCK_FILE).read_bytes()
    start = time.monotonic()
    with pytest.raises(RunLockError, match=rf"run 'run' is in use by pid {proc.pid} \(started .+\)") as err:
        RunLock(run_dir).acquire()
    assert time.monotonic() - start < 1.0
    assert "another run_name" in str(err.value)
    assert (run_dir / LOCK_FILE).read_bytes() == before  # the holder's record is untouched


def test_refused_in_a_separate_process_too(holder):
    run_dir, proc = holder
    done = subprocess.run([sys.executable, "-c", HOLDER, str(run_dir), "0"], cwd=REPO, env=clean_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and f"is in use by pid {proc.pid}" in done.stderr


def test_lock_is_free_again_when_the_holder_is_killed(holder):
    run_dir, proc = holder
    proc.kill()
    proc.wait()
    lock = RunLock(run_dir)
    with lock:
        assert read_lock_info(run_dir / LOCK_FILE)["pid"] == os.getpid()
    assert lock.note and f"left by pid {proc.pid}" in lock.note


def test_stale_lock_of_a_pid_that_does_not_exist_is_taken_over(tmp_path, caplog):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = {"pid": 2 ** 22 + 12345, "host": "elsewhere", "started": "2024-01-01T00:00:00+00:00", "token": "old"}
    (run_dir / LOCK_FILE).write_text(json.dumps(stale))
    with RunLock(run_dir) as lock:
        info = read_lock_info(run_dir / LOCK_FILE)
        assert info["pid"] == os.getpid() and info["token"] != "old"
    assert "took over the lock of run 'run' left by pid 4206649 (started 2024-01-01T00:00:00+00:00)" in lock.note
    assert lock.note in caplog.text
    assert read_lock_info(run_dir / LOCK_FILE) == {}  # released: nothing stale left behind


def test_reentrant_in_one_process(tmp_path):
    run_dir = tmp_path / "run"
    with RunLock(run_dir):
        with RunLock(run_dir):  # nested: must not deadlock or raise
            with RunLock(run_dir):
                pass
        info = read_lock_info(run_dir / LOCK_FILE)
        assert info["pid"] == os.getpid()  # still held by the outer block
        assert info["token"] in os.environ[ENV_VAR].split(",")
    # other locks of this process (e.g. a run opened by open_stage in another test) may stay exported
    assert read_lock_info(run_dir / LOCK_FILE) == {} and info["token"] not in os.environ.get(ENV_VAR, "").split(",")
    with RunLock(run_dir):  # and free to take again
        pass


def test_child_process_of_the_holder_may_enter(tmp_path):
    run_dir = tmp_path / "run"
    with RunLock(run_dir) as lock:
        env = {**clean_env(), **lock.child_env()}
        child = subprocess.run([sys.executable, "-c", HOLDER, str(run_dir), "0"], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=60)
        assert child.returncode == 0, child.stderr
        assert read_lock_info(run_dir / LOCK_FILE)["pid"] == os.getpid()  # the guest left the lock alone
        stranger = subprocess.run([sys.executable, "-c", HOLDER, str(run_dir), "0"], cwd=REPO, env=clean_env(),
                                  capture_output=True, text=True, timeout=60)
        assert stranger.returncode != 0 and f"in use by pid {os.getpid()}" in stranger.stderr


def test_two_run_directories_are_independent(tmp_path):
    with RunLock(tmp_path / "a"), RunLock(tmp_path / "b"):
        assert read_lock_info(tmp_path / "a" / LOCK_FILE)["token"] != read_lock_info(tmp_path / "b" / LOCK_FILE)["token"]
