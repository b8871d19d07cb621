"""Tuning across workers: trials per minute of one study with 1 and with 2 local workers
(`geomusic tune --worker`, `tune.storage: journal`), for the FCNN on UCI with one torch thread per
trial (single-threaded trials). The rate is the steady one: trials that end after every worker has
finished its first trial (start-up and torch's first-trial imports left out), over that time.

    .venv/bin/python benchmarks/bench_tune_workers.py                 # 24 trials of 8 epochs per setting
    .venv/bin/python benchmarks/bench_tune_workers.py --trials 40 --epochs 12

Target (issue #25): 2 workers give at least 1.7x the trials per minute of 1 worker on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from geomusic_lib.core import params_from_dict, RunDir
from geomusic_lib.pipeline import stages
from geomusic_lib.training.tune import storage_of
from geomusic_lib.training.tune_storage import open_storage

ROOT = Path(__file__).resolve().parents[1]


def bench_params(runs_dir: Path, run_name: str, trials: int, epochs: int) -> dict:
    """UCI (1059 tracks), the FCNN on one thread; no pruning, so every trial trains `epochs` epochs."""
    return {"runs_dir": str(runs_dir), "run_name": run_name, "device": "cpu", "seed": 7,
            "data": {"uci": {"chromatic": False}}, "models": ["fcnn"], "baselines": ["majority"],
            "train": {"epochs": epochs, "batch_size": 64, "threads": 1},
            "tune": {"enabled": True, "trials": trials, "startup_trials": trials, "storage": "journal"}}


def trials_per_minute(tmp: Path, workers: int, trials: int, epochs: int) -> tuple[float, int]:
    """Tune one study with `workers` processes; its trials per minute and its finished trials."""
    import optuna

    raw = bench_params(tmp / "runs", f"workers_{workers}", trials, epochs)
    params_file = tmp / f"workers_{workers}.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    params = params_from_dict(raw)
    run = RunDir(params.run_dir)
    stages.prepare_data(params, run)
    cmd = [sys.executable, "-m", "geomusic_lib", "tune", "--params", str(params_file), "--model", "fcnn", "--worker"]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    procs = [subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL) for _ in range(workers)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit(f"a worker failed ({workers} worker(s)); run the command by hand: {' '.join(cmd)}")
    store = storage_of(run, "fcnn", params)
    study = optuna.load_study(study_name=store.study_name, storage=open_storage(store, 60))
    done = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    firsts = {}
    for t in sorted(done, key=lambda t: t.datetime_complete):
        firsts.setdefault(t.user_attrs["worker"], t.datetime_complete)
    warm = max(firsts.values())
    steady = [t for t in done if t.datetime_complete > warm]
    span = (max(t.datetime_complete for t in steady) - warm).total_seconds()
    return 60 * len(steady) / span, len(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="trials per setting (default 24)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per trial (default 8)")
    args = parser.parse_args()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").is_file() else "?"
    print(f"{os.cpu_count()} CPU(s); load average before: {load}")
    rates = {}
    with tempfile.TemporaryDirectory(prefix="bench_tune_workers_") as tmp:
        for workers in (1, 2):
            start = time.perf_counter()
            rates[workers], n = trials_per_minute(Path(tmp), workers, args.trials, args.epochs)
            print(f"{workers} worker(s): {n} trials, {rates[workers]:.1f} trials/min "
                  f"({time.perf_counter() - start:.0f} s wall with start-up)")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").is_file() else "?"
    print(f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}x (target >= 1.7x on 2 cores); load average after: {load}")


if __name__ == "__main__":
    main()
