"""Run the book: execute every notebook with papermill from one params file, then build it.

    python -m geomusic_lib.run --params params/default.yaml            # all notebooks + book
    python -m geomusic_lib.run --params params/smoke.yaml --no-book    # notebooks only
    python -m geomusic_lib.run --params params/default.yaml --only 03_fcnn
    python -m geomusic_lib.run --params params/mirage.yaml --jobs 4    # 03-06 in parallel

The executed copies go to `book/notebooks/NN_name.ipynb`, which `_toc.yml` points at, and
`jupyter-book build .` renders them without executing anything again. The first failing
notebook stops the run; its executed copy holds the traceback.

`open_stage` is the other half: the first call of every notebook. It loads the params
file, moves to the project root so that every relative path in the params file means
the same thing interactively and under papermill, and prints the effective params.
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

import plotly.io as pio
import yaml
from plotly.io.base_renderers import MimetypeRenderer

from geomusic_lib.params import Params, load_params

NOTEBOOKS_DIR = Path("notebooks")
EXECUTED_DIR = Path("book/notebooks")
GENERATED_DIR = Path("book/_generated")
BUILD_HTML = Path("_build/html")

#: The notebooks in book order, in three stages: stage 2 (the models) only reads the
#: outputs of stage 1 and writes its own `runs/<name>/models/<model>/`, so its notebooks
#: can run in parallel (`--jobs`).
STAGES: tuple[tuple[str, ...], ...] = (
    ("00_overview", "01_data_prep", "02_feature_extraction"),
    ("03_fcnn", "04_cnn", "05_rnn", "06_attention"),
    ("07_evaluation", "08_interpretability", "09_predict"),
)
NOTEBOOKS: tuple[str, ...] = tuple(name for stage in STAGES for name in stage)
BOOK_RENDERER = "geomusic_book"
PLOTLY_RENDERER = f"plotly_mimetype+{BOOK_RENDERER}"


# --------------------------------------------------------------------------------------
# Inside a notebook
# --------------------------------------------------------------------------------------
def project_root_for(params_file: str | Path) -> Path:
    """The folder that relative paths in a params file are resolved against.

    That is the folder holding `params/` when the file lies in a folder named `params`
    (the repository root for `params/default.yaml`), else the file's own folder.
    """
    path = Path(params_file).resolve()
    return path.parent.parent if path.parent.name == "params" else path.parent


def open_stage(
    params_file: str | Path,
    run_name: str | None = None,
    overrides: dict[str, Any] | None = None,
    show: Sequence[str] | None = None,
) -> Params:
    """Load the params for one notebook, work from the project root, print what is used.

    `run_name` (when given) replaces the file's `run_name`. `show` lists the top-level
    sections to print (None prints all). Also sets up plotly so that the executed
    notebook carries plotly.js once and its figures render in the book with no network.
    """
    params_file = Path(params_file).resolve()
    merged = dict(overrides or {})
    if run_name:
        merged["run_name"] = run_name
    params = load_params(params_file, merged)
    os.chdir(project_root_for(params_file))
    setup_plotting()
    print(f"params file: {os.path.relpath(params_file)}   run directory: {params.run_dir}")
    print(format_params(params, show))
    return params


def train_stage(params: Params, model_name: str) -> Any:
    """Notebooks 03-06: train `model_name` on the run's data (and its frames, when extracted),
    print its size and each fold's best epoch, and return the `TrainResult`."""
    from geomusic_lib.data import load_run_data
    from geomusic_lib.features import frames_for_tracks
    from geomusic_lib.train import train_model

    if model_name in params.train_per_model:
        changed = ", ".join(f"{k}={v}" for k, v in params.train_per_model[model_name].items())
        print(f"{model_name} trains with {changed} (train_per_model), otherwise as `train`")
    data = load_run_data(params.run_dir)
    frames = frames_for_tracks(data.table.frame["track_id"], params.run_dir / "features")  # None unless extracted
    result = train_model(model_name, data.table, data.splits, params, params.run_dir / "models" / model_name,
                         frames=frames, class_info=data.classes)
    print(f"{model_name}: {result.n_parameters:,} trainable parameters")
    for split, fold in zip(data.splits, result.folds):
        print(f"{split.name}: best epoch {fold.best_epoch} of {fold.epochs_run}, test accuracy {fold.test_accuracy:.3f}")
    return result


def format_params(params: Params, show: Sequence[str] | None = None) -> str:
    """The effective params (after defaults and overrides) as YAML, optionally a few sections."""
    plain = params.to_plain()
    if show is not None:
        unknown = [key for key in show if key not in plain]
        if unknown:
            raise KeyError(f"show={unknown}: not a params section; choose from {sorted(plain)}")
        plain = {key: plain[key] for key in show}
    return yaml.safe_dump(plain, sort_keys=False, default_flow_style=None, width=100).rstrip()


def setup_plotting() -> None:
    """Render plotly figures as the JupyterLab mimetype *and* as HTML for the book.

    The HTML half draws with `window.Plotly`, which the book loads once from its own
    `_static/` (book/_ext/plotly_offline.py), so pages work offline and do not each carry
    plotly.js.
    """
    pio.renderers[BOOK_RENDERER] = BookHtmlRenderer()
    pio.renderers.default = PLOTLY_RENDERER


class BookHtmlRenderer(MimetypeRenderer):
    """A figure as a `<div>` plus the script that draws it with the page's plotly.js: no
    plotly.js and no MathJax from a CDN inside the output."""

    def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, str]:
        html = pio.to_html(fig_dict, include_plotlyjs=False, include_mathjax=False, full_html=False,
                           default_width="100%", default_height=525, validate=False,
                           config={"responsive": True, "displaylogo": False})
        return {"text/html": html}


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
        "Run `python -m geomusic_lib.run` from the repository root."
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
            raise SystemExit(f"--only {want}: no such notebook. Choose from: {', '.join(NOTEBOOKS)}")
        chosen.extend(matches)
    return [n for n in NOTEBOOKS if n in chosen]


MODEL_NOTEBOOKS = {"03_fcnn": "fcnn", "04_cnn": "cnn", "05_rnn": "rnn", "06_attention": "attention"}


def write_skipped_copy(root: Path, name: str, params_file: Path) -> NotebookResult:
    """An unexecuted copy of a model notebook whose model is not in `models:`, with a note on top."""
    import nbformat

    source = nbformat.read(root / NOTEBOOKS_DIR / f"{name}.ipynb", as_version=4)
    note = (f"```{{note}}\nNot run in this build: `{MODEL_NOTEBOOKS[name]}` is not listed under `models:` in "
            f"`{os.path.relpath(params_file, root)}`. Add it there to train and compare this model.\n```")
    source.cells.insert(0, nbformat.v4.new_markdown_cell(note))
    output = root / EXECUTED_DIR / f"{name}.ipynb"
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
    env = {"PYDEVD_DISABLE_FILE_VALIDATION": "1", "TQDM_DISABLE": "1", "PYTHONWARNINGS": warn_filters}
    if slot is not None and n_gpus > 1:
        env["CUDA_VISIBLE_DEVICES"] = str(slot % n_gpus)
    elif slot is not None and jobs > 1 and n_gpus == 0:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def execute_notebook(name: str, root: str, parameters: dict[str, Any], env: dict[str, str],
                     timeout: int | None = None, log_dir: str | None = None) -> NotebookResult:
    """Execute `notebooks/<name>.ipynb` into `book/notebooks/<name>.ipynb`.

    The kernel's own stderr (start-up warnings, library logs) goes to `log_dir/<name>.log`
    rather than the terminal; the executed copy holds the cells' outputs and tracebacks.
    """
    import papermill as pm

    root_path = Path(root)
    source = root_path / NOTEBOOKS_DIR / f"{name}.ipynb"
    output = root_path / EXECUTED_DIR / f"{name}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    saved_env = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    start = time.perf_counter()
    try:
        with _stderr_to(Path(log_dir) / f"{name}.log" if log_dir else None):
            pm.execute_notebook(
                str(source), str(output), parameters=parameters, kernel_name="python3",
                cwd=str(source.parent), progress_bar=False, log_output=False, execution_timeout=timeout,
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
    return text.strip().splitlines()[0][:500] if text.strip() else type(err).__name__


def run_notebooks(
    root: Path, names: Sequence[str], parameters: dict[str, Any], jobs: int = 1, timeout: int | None = None,
    log_dir: Path | None = None,
) -> list[NotebookResult]:
    """Execute `names` in book order, stage by stage; stop at the first failure.

    Kernel logs go to `log_dir/<notebook>.log` (default: the terminal)."""
    from tqdm.auto import tqdm

    n_gpus = gpu_count() if jobs > 1 else 0
    results: list[NotebookResult] = []
    bar = tqdm(total=len(names), desc="notebooks", unit="nb", file=sys.stdout, dynamic_ncols=True)
    try:
        for stage in STAGES:
            todo = [n for n in stage if n in names]
            if not todo:
                continue
            parallel = jobs > 1 and len(todo) > 1 and stage is STAGES[1]
            if parallel:
                stage_results = _run_parallel(root, todo, parameters, jobs, n_gpus, timeout, bar, log_dir)
            else:
                stage_results = []
                for name in todo:
                    bar.set_postfix_str(name)
                    result = execute_notebook(name, str(root), parameters, kernel_environment(None, 1, 0), timeout,
                                              str(log_dir) if log_dir else None)
                    _report_one(bar, result)
                    stage_results.append(result)
                    if result.error:
                        break
            results.extend(stage_results)
            if any(r.error for r in stage_results):
                break
    finally:
        bar.close()
    return results


def _run_parallel(root: Path, todo: list[str], parameters: dict[str, Any], jobs: int, n_gpus: int,
                  timeout: int | None, bar: Any, log_dir: Path | None) -> list[NotebookResult]:
    results: list[NotebookResult] = []
    bar.set_postfix_str(f"{len(todo)} in parallel" + (f" on {n_gpus} GPUs" if n_gpus > 1 else ""))
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=get_context("spawn")) as pool:
        pending = {
            pool.submit(execute_notebook, name, str(root), parameters, kernel_environment(slot, jobs, n_gpus), timeout,
                        str(log_dir) if log_dir else None): name
            for slot, name in enumerate(todo)
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                pending.pop(future)
                result = future.result()
                _report_one(bar, result)
                results.append(result)
            if any(r.error for r in results):
                for future in pending:
                    future.cancel()  # not started yet; running notebooks finish
                break
    order = {n: i for i, n in enumerate(todo)}
    return sorted(results, key=lambda r: order[r.name])


def _report_one(bar: Any, result: NotebookResult) -> None:
    status = "failed" if result.error else "ok"
    bar.write(f"  {result.name:<24} {result.seconds:7.1f} s  {status}")
    bar.update(1)


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


def write_generated_pages(root: Path, params: Params, params_file: Path, report: RunReport) -> None:
    """Write the run-specific fragments the prose pages include (results table, run facts)."""
    out = root / GENERATED_DIR
    out.mkdir(parents=True, exist_ok=True)
    run_dir = root / params.run_dir
    (out / "results_table.md").write_text(results_table_markdown(run_dir, root), encoding="utf-8")
    (out / "run_info.md").write_text(run_info_markdown(root, params, params_file, report), encoding="utf-8")


RESULT_COLUMNS = {"accuracy": "accuracy", "top5_accuracy": "top-5 accuracy", "macro_f1": "macro-F1",
                  "region_accuracy": "region accuracy", "continent_accuracy": "continent accuracy",
                  "mean_km": "mean error (km)", "median_km": "median error (km)", "ece": "ECE"}


def results_table_markdown(run_dir: Path, root: Path | None = None) -> str:
    """The headline metrics of `eval/metrics.csv` as a Markdown table, each with its 95 % CI;
    a pointer to the fix when the file is missing. Paths are shown relative to `root`."""
    import pandas as pd

    path = run_dir / "eval" / "metrics.csv"
    shown = Path(os.path.relpath(path, root)).as_posix() if root else path.as_posix()
    if not path.is_file():
        return (f"```{{note}}\nNo metrics table yet: `{shown}` does not exist. "
                "Run `make book` (or notebook 07_evaluation) to produce it.\n```\n")
    metrics = pd.read_csv(path)
    table = metrics[[c for c in ("model", "kind", "n") if c in metrics.columns]].copy()
    for column, title in RESULT_COLUMNS.items():
        if column in metrics.columns:
            digits = 0 if column.endswith("_km") else 3
            table[title] = [_with_interval(row, column, digits) for _, row in metrics.iterrows()]
    return (markdown_table(table) + f"\n\nEach cell: estimate (95 % bootstrap interval). All metrics, per-class "
            f"tables included: `{shown}` and `eval/per_class/`, written by 07_evaluation.\n")


def _with_interval(row: Any, column: str, digits: int) -> str:
    low, high = row.get(f"{column}_ci_low"), row.get(f"{column}_ci_high")
    text = f"{row[column]:.{digits}f}"
    if low == low and high == high and low is not None:  # not NaN
        text += f" ({low:.{digits}f}–{high:.{digits}f})"
    return text


def markdown_table(frame: Any) -> str:
    """A small DataFrame as a pipe table; floats to three decimals, numbers right-aligned."""
    import pandas as pd

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if value != value else f"{value:.3f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---" for c in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def merged_timings(run_dir: Path, report: RunReport) -> dict[str, float]:
    """Seconds per notebook: this invocation's, and an earlier one's for notebooks not rerun (`--only`)."""
    from geomusic_lib.manifest import read_manifest

    try:
        earlier = read_manifest(run_dir).get("timings_s", {})
    except (FileNotFoundError, ValueError):
        earlier = {}
    return {**earlier, **{r.name: round(r.seconds, 2) for r in report.results}}


def run_info_markdown(root: Path, params: Params, params_file: Path, report: RunReport) -> str:
    """Which params file, run, commit and machine made this book, and how long each notebook took."""
    from geomusic_lib.manifest import accelerator, git_state

    git = git_state(root)
    acc = accelerator()
    device = ", ".join(acc["devices"]) if acc["devices"] else f"CPU ({os.cpu_count()} cores)"
    commit = (git["commit"] or "unknown")[:12] + (" (with uncommitted changes)" if git["dirty"] else "")
    rerun = {r.name for r in report.results}
    seconds = merged_timings(root / params.run_dir, report)
    timings = "\n".join(f"| {name} | {seconds[name]:.1f}{'' if name in rerun else ' (earlier invocation)'} |"
                        for name in NOTEBOOKS if name in seconds)
    return (
        f"- params file: `{os.path.relpath(params_file, root)}`\n"
        f"- run directory: `{params.run_dir.as_posix()}`\n"
        f"- git commit: `{commit}`\n"
        f"- machine: {device}\n\n"
        f"| notebook | seconds |\n|---|---:|\n{timings}\n\n"
        f"The effective parameters of this run:\n\n```yaml\n{format_params(params)}\n```\n"
    )


def build_book(root: Path) -> tuple[float, int]:
    """`jupyter-book build .` (Jupyter Book 1.x); returns (seconds, return code). The log goes to `_build/build.log`."""
    import shutil
    import subprocess

    exe = Path(sys.executable).with_name("jupyter-book")
    command = [str(exe)] if exe.is_file() else [shutil.which("jupyter-book") or "jupyter-book"]
    start = time.perf_counter()
    done = subprocess.run([*command, "build", str(root)], cwd=root, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = root / "_build" / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    warnings = [line for line in (done.stdout + done.stderr).splitlines() if "WARNING" in line or "ERROR" in line]
    for line in warnings[:20]:
        print("  " + line)
    if len(warnings) > 20:
        print(f"  ... {len(warnings) - 20} more; see {log.relative_to(root)}")
    if done.returncode != 0:
        print((done.stdout + done.stderr)[-3000:])
    return seconds, done.returncode


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geomusic_lib.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params/default.yaml", help="params file (default: %(default)s)")
    parser.add_argument("--only", action="append", metavar="NOTEBOOK",
                        help="run only these notebooks, e.g. --only 03_fcnn or --only 03,04 (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="run the model notebooks 03-06 in N processes")
    parser.add_argument("--run-name", default=None, help="override the params file's run_name")
    parser.add_argument("--no-book", action="store_true", help="execute the notebooks but do not build the book")
    parser.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell (default: no limit)")
    args = parser.parse_args(argv)

    root = find_book_root()
    params_file = Path(args.params).resolve()
    params = load_params(params_file, {"run_name": args.run_name} if args.run_name else None)
    names = select_notebooks(args.only)
    parameters: dict[str, Any] = {"params_file": os.path.relpath(params_file, root / NOTEBOOKS_DIR)}
    if args.run_name:
        parameters["run_name"] = args.run_name

    from geomusic_lib.manifest import update_manifest, write_manifest

    cwd = Path.cwd()
    os.chdir(project_root_for(params_file))
    write_manifest(params, os.path.relpath(params_file))
    os.chdir(cwd)
    print(f"Running {len(names)} notebook(s) with {os.path.relpath(params_file, root)} "
          f"into {EXECUTED_DIR}/ (run directory {params.run_dir})")

    start = time.perf_counter()
    log_dir = project_root_for(params_file) / params.run_dir / "logs"
    skipped = [n for n in names if n in MODEL_NOTEBOOKS and MODEL_NOTEBOOKS[n] not in params.models]
    names = [n for n in names if n not in skipped]
    report = RunReport(results=[write_skipped_copy(root, n, params_file) for n in skipped])
    report.results += run_notebooks(root, names, parameters, jobs=max(1, args.jobs), timeout=args.timeout,
                                    log_dir=log_dir)
    report.results.sort(key=lambda r: NOTEBOOKS.index(r.name))
    failed = report.failed
    missing = [n for n in NOTEBOOKS if not (root / EXECUTED_DIR / f"{n}.ipynb").is_file()]
    if failed is None and not args.no_book:
        if missing:
            print(f"Not building the book: no executed copy of {', '.join(missing)} yet. Run without --only first.")
        else:
            report.total_seconds = time.perf_counter() - start
            write_generated_pages(root, params, params_file, report)
            report.book_seconds, code = build_book(root)
            if code != 0:
                report.total_seconds = time.perf_counter() - start
                print(format_timings(report))
                print(f"jupyter-book build failed (exit {code}); full log in _build/build.log")
                return code
    report.total_seconds = time.perf_counter() - start
    run_dir = project_root_for(params_file) / params.run_dir
    update_manifest(run_dir, timings_s=merged_timings(run_dir, report))
    print(format_timings(report))
    if failed is not None:
        print(f"Notebook {failed.name} failed; executed copy with the traceback: "
              f"{os.path.relpath(failed.output, cwd) if failed.output else '?'}\n  {failed.error}\n"
              f"  kernel log: {os.path.relpath(log_dir / (failed.name + '.log'), cwd)}")
        return 1
    if not args.no_book and not missing:
        print(f"Book: {os.path.relpath(root / BUILD_HTML / 'index.html', cwd)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
