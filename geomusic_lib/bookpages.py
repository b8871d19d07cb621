"""The run-specific pages of the book: the results table and the run facts that the prose
pages include, and the `jupyter-book build` call. Written from the run's own files."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from geomusic_lib.fileio import atomic_write_text
from geomusic_lib.manifest import accelerator, git_state, read_manifest
from geomusic_lib.notebook_list import NOTEBOOKS
from geomusic_lib.params import Params
from geomusic_lib.rundir import RunDir, read_run_csv
from geomusic_lib.session import format_params

GENERATED_DIR = Path("book/_generated")


def write_generated_pages(root: Path, params: Params, params_file: Path, seconds: dict[str, float],
                          rerun: set[str]) -> None:
    """Write the run-specific fragments the prose pages include (results table, run facts)."""
    out = root / GENERATED_DIR
    atomic_write_text(out / "results_table.md", results_table_markdown(RunDir(params.run_dir), root))
    atomic_write_text(out / "run_info.md", run_info_markdown(root, params, params_file, seconds, rerun))
    atomic_write_text(out / "tuning_table.md", tuning_table_markdown(RunDir(params.run_dir)))


def tuning_table_markdown(run: RunDir) -> str:
    """The run's tuning summary (trials, time, best validation log-loss and settings per model), or a
    note that the run did not tune and how to build the tuned one."""
    from geomusic_lib.tune import tuning_summary

    summary = tuning_summary(run)
    if summary.empty:
        return ("```{note}\nThis run did not tune (`tune.enabled: false`): every model trained with the settings "
                "of its params file. `make book PARAMS=params/tuned.yaml` builds the tuned run.\n```\n")
    return (markdown_table(summary) + "\n\nTrials were scored on validation rows only; the models then trained "
            "with the best settings. Every trial: `runs/<run_name>/tuning/<model>/study.db` (Optuna, SQLite).\n")


RESULT_COLUMNS = {"accuracy": "accuracy", "top5_accuracy": "top-5 accuracy", "macro_f1": "macro-F1",
                  "region_accuracy": "region accuracy", "continent_accuracy": "continent accuracy",
                  "mean_km": "mean error (km)", "median_km": "median error (km)", "ece": "ECE"}


def results_table_markdown(run: RunDir, root: Path | None = None) -> str:
    """The headline metrics of `eval/metrics.csv` as a Markdown table, each with its 95 % CI;
    a pointer to the fix when the file is missing. Paths are shown relative to `root`."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    path = run.metrics_csv
    shown = Path(os.path.relpath(path, root)).as_posix() if root else path.as_posix()
    if not path.is_file():
        return (f"```{{note}}\nNo metrics table yet: `{shown}` does not exist. "
                "Run `make book` (or notebook 07_evaluation) to produce it.\n```\n")
    metrics = read_run_csv(path)
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
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if value != value else f"{value:.3f}"
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---" for c in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def merged_timings(run_dir: Path, seconds: dict[str, float]) -> dict[str, float]:
    """Seconds per notebook: this invocation's, and an earlier one's for notebooks not rerun (`--only`)."""
    try:
        earlier = read_manifest(run_dir).get("timings_s", {})
    except (FileNotFoundError, ValueError):
        earlier = {}
    return {**earlier, **{name: round(s, 2) for name, s in seconds.items()}}


def run_info_markdown(root: Path, params: Params, params_file: Path, seconds_now: dict[str, float],
                      rerun: set[str]) -> str:
    """Which params file, run, commit and machine made this book, and how long each notebook took."""
    git = git_state(root)
    acc = accelerator()
    device = ", ".join(acc["devices"]) if acc["devices"] else f"CPU ({os.cpu_count()} cores)"
    commit = (git["commit"] or "unknown")[:12] + (" (with uncommitted changes)" if git["dirty"] else "")
    seconds = merged_timings(params.run_dir, seconds_now)
    timings = "\n".join(f"| {name} | {seconds[name]:.1f}{'' if name in rerun else ' (earlier invocation)'} |"
                        for name in NOTEBOOKS if name in seconds)
    return (
        f"- params file: `{os.path.relpath(params_file, root)}`\n"
        f"- run directory: `{Path(os.path.relpath(params.run_dir, root)).as_posix()}`\n"
        f"- git commit: `{commit}`\n"
        f"- machine: {device}\n\n"
        f"| notebook | seconds |\n|---|---:|\n{timings}\n\n"
        f"The effective parameters of this run:\n\n```yaml\n{format_params(params)}\n```\n"
    )


def build_book(root: Path) -> tuple[float, int]:
    """`jupyter-book build .` (Jupyter Book 1.x); returns (seconds, return code). The log goes to `_build/build.log`."""
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
