"""`geomusic tune`: tune a run's models from the shell; with `--worker`, join a study that other
processes or machines share (`tune.storage`: journal or an RDB URL) and finish its budget with them.

```
geomusic tune --params params/tuned.yaml --model fcnn --worker   # in each of N terminals or machines
```

The run's data must be prepared first (notebooks 01 and 02). A worker takes no run lock, so
workers join while `geomusic run` or a notebook tunes the same study; with `tune.storage: sqlite`
the command holds the run's lock, as a notebook does, since one SQLite study takes one process.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

from geomusic_lib.core.params import load_params, ParamsError
from geomusic_lib.core.rundir import RunDir
from geomusic_lib.data import DataError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="geomusic tune",
        description="Tune models of a params file (tune.enabled) on held-out rows; --worker joins a shared study.")
    parser.add_argument("--params", default="params/default.yaml", help="params file (default: %(default)s)")
    parser.add_argument("--model", action="append", metavar="MODEL",
                        help="model to tune (repeatable; default: the run's networks and tree baselines)")
    parser.add_argument("--worker", action="store_true",
                        help="join the study on tune.storage (journal or an RDB URL) with other workers")
    parser.add_argument("--run-name", default=None, help="override the params file's run_name")
    return parser


def _check(params, params_file: Path, worker: bool) -> None:
    if not params.tune.enabled:
        raise ParamsError(f"{params_file}: tune.enabled is false, so the run's notebooks would not use the study; "
                          "set tune.enabled: true (as params/tuned.yaml does)")
    if worker and params.tune.storage == "sqlite":
        raise ParamsError(f"{params_file}: tune.storage is sqlite, a file one process uses; for --worker set "
                          "tune.storage: journal (local workers) or an RDB URL such as "
                          "postgresql+pg8000://tuner:${PGPASSWORD}@host/db (machines)")


def _tune(args: argparse.Namespace) -> int:
    from geomusic_lib.core.runlock import RunLock
    from geomusic_lib.pipeline import stages
    from geomusic_lib.pipeline.session import find_params_file

    params_file = find_params_file(args.params)
    params = load_params(params_file, {"run_name": args.run_name} if args.run_name else None)
    _check(params, params_file, args.worker)
    run = RunDir(params.run_dir)
    if not run.table.is_file():
        raise DataError(f"run '{run.name}' has no prepared data ({run.table}); run geomusic run --params "
                        f"{args.params} --run-name {run.name} --only 01,02 --no-book first")
    lock = RunLock(run.path) if params.tune.storage == "sqlite" else nullcontext()
    with lock:
        summary = stages.tune_models(params, run, args.model)
    print(summary.to_string(index=False) if len(summary) else "no model tuned")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from geomusic_lib.core.runlock import RunLockError
    from geomusic_lib.training.tune_storage import StorageError

    args = build_parser().parse_args(argv)
    try:
        return _tune(args)
    except (FileNotFoundError, ParamsError, DataError, RunLockError, StorageError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
