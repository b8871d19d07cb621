"""Run the book: execute every notebook with papermill from one params file, then build it.

    geomusic run --params params/default.yaml            # all notebooks + book
    geomusic run --params params/smoke.yaml --no-book    # notebooks only
    geomusic run --params params/default.yaml --only 03_fcnn
    geomusic run --params params/mirage.yaml --jobs 4    # 03-06 in parallel

Each run has its own book: the executed copies go to `runs/<run>/book/book/notebooks/`,
next to a copy of the book's sources, and `jupyter-book build` renders them into
`runs/<run>/book/_build/html` without executing anything again. Runs with other names never
touch it. The first failing notebook stops the run; its executed copy holds the traceback,
and the book is not built. One process at a time works on a run (`geomusic_lib.core.runlock`).
This module is the orchestrator only: notebooks import `geomusic_lib.pipeline.session` and
`geomusic_lib.pipeline.stages`, and the run-specific book pages come from `geomusic_lib.book.pages`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterator, Sequence

from geomusic_lib.core.extras import MissingExtraError, require
from geomusic_lib.book.notebooks import NOTEBOOK_MODELS, NOTEBOOKS, STAGES, notebook_runs
from geomusic_lib.core.params import Params, ParamsError, load_params
from geomusic_lib.core.progress import PROGRESS_ENV, PROGRESS_FILE_ENV
from geomusic_lib.core.rundir import RunDir
from geomusic_lib.pipeline.console import earlier_timings, LogFollower, NotebookBar, parallel_label

NOTEBOOKS_DIR = Path("notebooks")


# --------------------------------------------------------------------------------------
# The orchestrator
# --------------------------------------------------------------------------------------
@dataclass
class NotebookResult:
    name: str
    seconds: float
    error: str | None = None
    output: Path | None = None


@dataclass
class RunReport:
    results: list[NotebookResult] = field(default_factory=list)
    book_seconds: float | None = None
    total_seconds: float = 0.0

    @property
    def failed(self) -> NotebookResult | None:
        return next((r for r in self.results if r.error is not None), None)


def find_book_root(start: str | Path | None = None) -> Path:
    """The repository root: the nearest folder (from `start`, default the cwd) with `_toc.yml` and `notebooks/`."""
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "_toc.yml").is_file() and (folder / NOTEBOOKS_DIR).is_dir():
            return folder
    raise FileNotFoundError(
        f"{start}: not inside a geomusic checkout (no _toc.yml and notebooks/ here or above). "
        "Run `geomusic run` from the repository root."
    )


def select_notebooks(only: Sequence[str] | None) -> list[str]:
    """Notebook names in book order; `only` takes full names or number prefixes (`03`, `03_fcnn`)."""
    if not only:
        return list(NOTEBOOKS)
    wanted = [w.strip() for item in only for w in item.split(",") if w.strip()]
    chosen = []
    for want in wanted:
        matches = [n for n in NOTEBOOKS if n == want or n.split("_", 1)[0] == want or n.split("_", 1)[1] == want]
        if not matches:
            raise UserError(f"--only {want}: no such notebook. Choose from: {', '.join(NOTEBOOKS)}")
        chosen.extend(matches)
    return [n for n in NOTEBOOKS if n in chosen]


def write_skipped_copy(root: Path, run: RunDir, name: str, params_file: Path) -> NotebookResult:
    """An unexecuted copy of a model notebook whose model is not in `models:`, with a note on top."""
    nbformat = require("nbformat", "book")
    source = nbformat.read(root / NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    listed = " or ".join(f"`{m}`" for m in NOTEBOOK_MODELS[name])
    note = (f"```{{note}}\nNot run in this build: {listed} is not listed under `models:` in "
            f"`{os.path.relpath(params_file, root)}`. Add it there to train and compare this model.\n```")
    source.cells.insert(0, nbformat.v4.new_markdown_cell(note))
    source.metadata["geomusic"] = {"run_name": run.name, "skipped": True}
    output = run.book_notebooks / f"{name}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(source, output)
    return NotebookResult(name, 0.0, None, output)


def gpu_count() -> int:
    """Visible CUDA devices (0 on a CPU box)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def kernel_environment(slot: int | None, jobs: int, n_gpus: int) -> dict[str, str]:
    """Environment changes for one notebook's kernel: its GPU when there are several,
    its share of the CPU threads when notebooks run side by side on CPU."""
    # No progress bars or "IProgress not found" warnings in the executed copies: the book
    # shows outputs, not a terminal. Interactive runs keep their bars.
    warn_filters = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:IProgress not found"]))
    env = {"PYDEVD_DISABLE_FILE_VALIDATION": "1", "TQDM_DISABLE": "1", "PYTHONWARNINGS": warn_filters,
           PROGRESS_ENV: "log"}  # geomusic's own bars go to the kernel log, which the console follows
    if slot is not None and n_gpus > 1:
        env["CUDA_VISIBLE_DEVICES"] = str(slot % n_gpus)
    elif slot is not None and jobs > 1 and n_gpus == 0:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def execute_notebook(name: str, root: str, out_dir: str, parameters: dict[str, Any], env: dict[str, str],
                     timeout: int | None = None, log_dir: str | None = None) -> NotebookResult:
    """Execute `notebooks/<name>.ipynb` into `out_dir/<name>.ipynb` (the run's book).

    The kernel's own stderr (start-up warnings, library logs) goes to `log_dir/<name>.log`
    rather than the terminal; the executed copy holds the cells' outputs and tracebacks.
    """
    pm = require("papermill", "book")

    root_path = Path(root)
    source = root_path / NOTEBOOKS_DIR / f"{name}.ipynb"
    output = Path(out_dir) / f"{name}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    if log_dir:  # geomusic's bars append to the log themselves (fd 2 would reach the notebook)
        env = {**env, PROGRESS_FILE_ENV: str(Path(log_dir).resolve() / f"{name}.log")}
    saved_env = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    start = time.perf_counter()
    try:
        with _stderr_to(Path(log_dir) / f"{name}.log" if log_dir else None):
            pm.execute_notebook(
                str(source), str(output), parameters=parameters, kernel_name="python3",
                cwd=str(source.parent), progress_bar=False, log_output=False, execution_timeout=timeout,
                shutdown_kernel="immediate",  # every output is in by then: skip ~1.7 s of kernel teardown
            )
    except Exception as err:  # noqa: BLE001 - reported by name, the copy holds the traceback
        return NotebookResult(name, time.perf_counter() - start, _short_error(err), output)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return NotebookResult(name, time.perf_counter() - start, None, output)


@contextmanager
def _stderr_to(path: Path | None) -> Iterator[None]:
    """Point file descriptor 2 (inherited by the kernel process) at `path` for the duration."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "wb") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _short_error(err: Exception) -> str:
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    text = f"{ename}: {evalue}" if ename else f"{type(err).__name__}: {err}"
    line = text.strip().splitlines()[0][:500] if text.strip() else type(err).__name__
    if type(err).__name__ == "DeadKernelError" or "DeadKernelError" in line:
        line += (" — the kernel died (out of memory, or killed). Run the same command again: it resumes, "
                 "keeping finished notebooks' outputs and trained epochs.")
    return line


def run_notebooks(
    root: Path, out_dir: Path, names: Sequence[str], parameters: dict[str, Any], jobs: int = 1,
    timeout: int | None = None, log_dir: Path | None = None, earlier_seconds: dict[str, float] | None = None,
) -> list[NotebookResult]:
    """Execute `names` in book order into `out_dir`, stage by stage; stop at the first failure.

    Kernel logs go to `log_dir/<notebook>.log` (default: the terminal); the console bar shows
    the latest progress line of the log being written, and the time left only when
    `earlier_seconds` (an earlier run of the same params) gives it."""
    n_gpus = gpu_count() if jobs > 1 else 0
    results: list[NotebookResult] = []
    bar = NotebookBar(names, earlier_seconds or {}, jobs, parallel=[n for n in names if n in STAGES[1]])
    follower = LogFollower(log_dir, bar.bar) if log_dir else None
    try:
        for stage in STAGES:
            todo = [n for n in stage if n in names]
            if not todo:
                continue
            parallel = jobs > 1 and len(todo) > 1 and stage is STAGES[1]
            if parallel:
                stage_results = _run_parallel(root, out_dir, todo, parameters, jobs, n_gpus, timeout, bar, log_dir)
            else:
                stage_results = []
                for name in todo:
                    bar.bar.set_postfix_str(name)
                    result = execute_notebook(name, str(root), str(out_dir), parameters, kernel_environment(None, 1, 0),
                                              timeout, str(log_dir) if log_dir else None)
                    bar.report(result)
                    stage_results.append(result)
                    if result.error:
                        break
            results.extend(stage_results)
            if any(r.error for r in stage_results):
                break
    finally:
        if follower:
            follower.stop()
        bar.close()
    return results


def _run_parallel(root: Path, out_dir: Path, todo: list[str], parameters: dict[str, Any], jobs: int, n_gpus: int,
                  timeout: int | None, bar: Any, log_dir: Path | None) -> list[NotebookResult]:
    results: list[NotebookResult] = []
    bar.bar.set_postfix_str(parallel_label(todo, jobs, n_gpus))
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=get_context("spawn")) as pool:
        pending = {
            pool.submit(execute_notebook, name, str(root), str(out_dir), parameters,
                        kernel_environment(slot, jobs, n_gpus), timeout, str(log_dir) if log_dir else None): name
            for slot, name in enumerate(todo)
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                pending.pop(future)
                result = future.result()
                bar.report(result)
                results.append(result)
            if any(r.error for r in results):
                for future in pending:
                    future.cancel()  # not started yet; running notebooks finish
                break
    order = {n: i for i, n in enumerate(todo)}
    return sorted(results, key=lambda r: order[r.name])


def format_timings(report: RunReport) -> str:
    """The per-notebook time table printed at the end of a run (and shown in the book)."""
    lines = [f"{'step':<24} {'seconds':>8}  status", "-" * 42]
    for r in report.results:
        status = "FAILED" if r.error else "ok" if r.seconds else "skipped (not in models)"
        lines.append(f"{r.name:<24} {r.seconds:8.1f}  {status}")
    if report.book_seconds is not None:
        lines.append(f"{'jupyter-book build':<24} {report.book_seconds:8.1f}  ok")
    lines.append("-" * 42)
    lines.append(f"{'total':<24} {report.total_seconds:8.1f}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geomusic run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params/default.yaml", help="params file (default: %(default)s)")
    parser.add_argument("--only", action="append", metavar="NOTEBOOK",
                        help="run only these notebooks, e.g. --only 03_fcnn or --only 03,04 (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="run the model notebooks 03-06 in N processes")
    parser.add_argument("--run-name", default=None, help="override the params file's run_name")
    parser.add_argument("--no-book", action="store_true", help="execute the notebooks but do not build the book")
    parser.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell (default: no limit)")
    return parser


def execute_run(root: Path, params: Params, params_file: Path, names: list[str], args: argparse.Namespace) -> RunReport:
    """Write the manifest, copy skipped model notebooks, execute the rest in stage order."""
    from geomusic_lib.core.manifest import write_manifest

    run = RunDir(params.run_dir)
    earlier = earlier_timings(run, params)  # read before the manifest is rewritten
    write_manifest(params, os.path.relpath(params_file, params.root))
    print(f"Running {len(names)} notebook(s) with {os.path.relpath(params_file, root)} for run '{params.run_name}' "
          f"(run directory {os.path.relpath(params.run_dir, root)}; kernel logs in its logs/)")
    parameters = {"params_file": os.path.relpath(params_file, root / NOTEBOOKS_DIR), "run_name": params.run_name}
    skipped = [n for n in names if not notebook_runs(n, params.models)]
    report = RunReport(results=[write_skipped_copy(root, run, n, params_file) for n in skipped])
    report.results += run_notebooks(root, run.book_notebooks, [n for n in names if n not in skipped], parameters,
                                    jobs=max(1, args.jobs), timeout=args.timeout, log_dir=run.logs_dir,
                                    earlier_seconds=earlier)
    report.results.sort(key=lambda r: NOTEBOOKS.index(r.name))
    return report


def publish_book(root: Path, params: Params, params_file: Path, report: RunReport) -> int:
    """Generate the run's pages and build its book; refuse (exit 2) when its notebooks are
    incomplete, from another run or failed. Returns 0 or the failing exit code."""
    from geomusic_lib.book.pages import book_problems, build_book, stage_book_sources, write_generated_pages

    run = RunDir(params.run_dir)
    problems = book_problems(run)
    if problems:
        print(f"error: not building the book of run '{run.name}': {'; '.join(problems)}. Run the missing notebooks "
              f"for this run, e.g. geomusic run --params {os.path.relpath(params_file, Path.cwd())} "
              f"--run-name {run.name}", file=sys.stderr)
        return 2
    stage_book_sources(root, run)
    seconds = {r.name: r.seconds for r in report.results}
    write_generated_pages(root, run, params, params_file, seconds, set(seconds))
    report.book_seconds, code = build_book(run)
    if code != 0:
        print(f"jupyter-book build failed (exit {code}); full log in {run.book_dir / '_build' / 'build.log'}")
    return code


def _load(args: argparse.Namespace) -> tuple[Path, Path, Params]:
    """The checkout, the params file and the validated params; known problems become `UserError`."""
    from geomusic_lib.pipeline.session import find_params_file

    try:
        root = find_book_root()
        params_file = find_params_file(args.params)
        return root, params_file, load_params(params_file, {"run_name": args.run_name} if args.run_name else None)
    except (FileNotFoundError, ParamsError) as err:
        raise UserError(str(err)) from None


class UserError(Exception):
    """A problem with the command's input: printed as one line, exit code 2."""


def check_table_source(params: Params, names: Sequence[str]) -> None:
    """Read a user's table (`data.source: table`) once before 01 runs, so that a missing label column or a
    text cell stops the run at once, in one line naming the key, not after 00 has run."""
    if params.data.source != "table" or "01_data_prep" not in names:
        return
    from geomusic_lib.data import DataError, load_dataset

    try:
        load_dataset(params)
    except (DataError, FileNotFoundError) as err:
        raise UserError(str(err)) from None


def _orchestrate(args: argparse.Namespace) -> int:
    from geomusic_lib.book.pages import merged_timings
    from geomusic_lib.core.manifest import update_manifest
    from geomusic_lib.core.runlock import RunLock, RunLockError

    root, params_file, params = _load(args)
    names = select_notebooks(args.only)
    try:
        require("papermill", "book")
        if not args.no_book:
            require("jupyter_book", "book")
    except MissingExtraError as err:
        raise UserError(str(err)) from None
    check_table_source(params, names)
    try:
        lock = RunLock(params.run_dir).acquire()
    except RunLockError as err:
        raise UserError(str(err)) from None
    try:
        start = time.perf_counter()
        report = execute_run(root, params, params_file, names, args)
        code = publish_book(root, params, params_file, report) if report.failed is None and not args.no_book else 0
        report.total_seconds = time.perf_counter() - start
        update_manifest(params.run_dir, timings_s=merged_timings(params.run_dir, {r.name: r.seconds for r in report.results}))
    finally:
        lock.release()
    print(format_timings(report))
    return _final_message(report, params, code, args.no_book)


def _final_message(report: RunReport, params: Params, code: int, no_book: bool) -> int:
    run = RunDir(params.run_dir)
    failed = report.failed
    if failed is not None:
        print(f"Notebook {failed.name} failed; executed copy with the traceback: "
              f"{os.path.relpath(failed.output, Path.cwd()) if failed.output else '?'}\n  {failed.error}\n"
              f"  kernel log: {os.path.relpath(run.log(failed.name), Path.cwd())}")
        return 1
    if code == 0 and not no_book:
        print(f"Book of run '{run.name}': {os.path.relpath(run.book_html / 'index.html', Path.cwd())}")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _orchestrate(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
