"""One book per run: `runs/<name>/book/` holds a copy of the book's sources, the run's
executed notebooks and its generated pages (results table, run facts), and its HTML in
`_build/html`. A book is only built from notebooks that all come from this run and all ran."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from geomusic_lib.book.config import book_config, install_markdown, read_config, repository_url, write_book_config
from geomusic_lib.book.facts import write_book_facts
from geomusic_lib.book.findings import split_protocol
from geomusic_lib.data.uci_features import shipped_dictionary
from geomusic_lib.core.extras import require
from geomusic_lib.core.fileio import atomic_write_bytes, atomic_write_text
from geomusic_lib.core.manifest import accelerator, git_state, read_manifest
from geomusic_lib.book.notebooks import NOTEBOOKS
from geomusic_lib.core.params import Params
from geomusic_lib.core.params_text import format_params
from geomusic_lib.core.rundir import RunDir, read_run_csv

BOOK_PAGES = "book"  # prose pages, bibliography, CSS and the Sphinx extensions


def stage_book_sources(root: Path, run: RunDir) -> Path:
    """Copy the book's table of contents and prose pages into the run's book folder, write the quick
    start's install steps (from the repository link of `_config.yml`), and show one
    parameters cell per executed notebook (its generated pages stay); returns that folder."""
    config = book_config(read_config(root / "_config.yml"))  # written once, with the facts: write_generated_pages
    atomic_write_bytes(run.book_dir / "_toc.yml", (root / "_toc.yml").read_bytes())
    shutil.copytree(root / BOOK_PAGES, run.book_dir / BOOK_PAGES, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("notebooks", "_generated", ".ipynb_checkpoints", "__pycache__"))
    atomic_write_text(run.book_generated / "install.md", install_markdown(repository_url(config)))
    for path in sorted(run.book_notebooks.glob("*.ipynb")):
        show_parameters_once(path)
    return run.book_dir


def hide_default_parameters(notebook: dict[str, Any]) -> bool:
    """Tag the `parameters` cell (the defaults) `remove-cell` when papermill injected the values that
    ran (`injected-parameters`), so the page shows one parameters cell: what ran. Returns whether it
    changed the notebook; a copy papermill did not run keeps its defaults visible."""
    def tags(cell: dict[str, Any]) -> list[str]:
        return cell.get("metadata", {}).get("tags", [])

    if not any("injected-parameters" in tags(cell) for cell in notebook.get("cells", [])):
        return False
    changed = False
    for cell in notebook["cells"]:
        if "parameters" in tags(cell) and "remove-cell" not in tags(cell):
            cell.setdefault("metadata", {}).setdefault("tags", []).append("remove-cell")
            changed = True
    return changed


def show_parameters_once(path: Path) -> None:
    """`hide_default_parameters` on an executed copy, rewritten in place only when it changed."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    if hide_default_parameters(notebook):
        atomic_write_text(path, json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def notebook_origin(path: Path) -> tuple[str | None, bool]:
    """(run name, failed) recorded in an executed copy (papermill's metadata, or ours for a skipped one)."""
    meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    papermill = meta.get("papermill", {})
    run_name = meta.get("geomusic", {}).get("run_name") or papermill.get("parameters", {}).get("run_name")
    return run_name, bool(papermill.get("exception"))


def book_problems(run: RunDir, notebooks: tuple[str, ...] = NOTEBOOKS) -> list[str]:
    """Why the run's executed copies cannot make one book: missing, from another run, or failed."""
    problems = []
    for name in notebooks:
        path = run.book_notebooks / f"{name}.ipynb"
        if not path.is_file():
            problems.append(f"{name} has not run for '{run.name}'")
            continue
        origin, failed = notebook_origin(path)
        if origin != run.name:
            problems.append(f"{name} comes from run '{origin}'")
        elif failed:
            problems.append(f"{name} failed")
    return problems


def write_generated_pages(root: Path, run: RunDir, params: Params, params_file: Path, seconds: dict[str, float],
                          rerun: set[str]) -> None:
    """Write the run-specific fragments the prose pages include (results table, run facts) and the run's
    `_config.yml` (the repository's, with its links and the facts as MyST substitutions)."""
    atomic_write_text(run.book_generated / "results_table.md", results_table_markdown(run, root))
    atomic_write_text(run.book_generated / "run_info.md", run_info_markdown(root, params, params_file, seconds, rerun))
    atomic_write_text(run.book_generated / "tuning_table.md", tuning_table_markdown(run))
    atomic_write_text(run.book_generated / "feature_dictionary.md", feature_dictionary_markdown())
    atomic_write_text(run.book_generated / "mirage_scale.md", mirage_scale_markdown(root))
    atomic_write_text(run.book_generated / "own_data.md", own_data_markdown(root))
    facts = write_book_facts(run)  # the prose pages' numbers and findings, from this run
    write_book_config(root / "_config.yml", run.book_dir / "_config.yml", facts)


def own_data_markdown(root: Path) -> str:
    """The quick start's "Your own data": the README's section of that name (one text for both)."""
    readme = (root / "README.md").read_text(encoding="utf-8") if (root / "README.md").is_file() else ""
    found = re.search(r"<!-- own-data:start -->\n(.*?)<!-- own-data:end -->", readme, flags=re.S)
    if not found:
        return "```{note}\nThe README of this checkout has no \"Your own data\" section.\n```\n"
    return found.group(1).replace("points here", "points to this section")


def mirage_scale_markdown(root: Path) -> str:
    """The committed MIRAGE scale measurement (`benchmarks/results/mirage_scale.md`), or a note that there is none."""
    path = root / "benchmarks" / "results" / "mirage_scale.md"
    if path.is_file():  # its tables sit under the page's H2 section: H4 headings become H3
        return re.sub(r"^#### ", "### ", path.read_text(encoding="utf-8"), flags=re.M)
    return "```{note}\nNo scale measurement in this checkout: run `make bench`.\n```\n"


def feature_dictionary_markdown() -> str:
    """The features page's tables, from the shipped UCI dictionary: the statistics, the descriptors
    (with confidence and evidence) and every column name."""
    table = shipped_dictionary()
    stats = table.drop_duplicates("statistic")[["statistic", "statistic_meaning"]]
    first = table[table["column"].str.startswith("s1_") & (table["duplicate_of"] == "")].copy()
    first.insert(0, "columns", "`" + first["column"].str.replace("s1_", "s<k>_", regex=False) + "`")
    descriptors = first[["columns", "descriptor", "family", "group", "meaning", "confidence", "note"]]
    columns = table[["column", "statistic", "descriptor", "family", "duplicate_of", "confidence"]]
    return ("### The four statistics (`s1` to `s4`)\n\n" + markdown_table(stats.rename(columns={
                "statistic_meaning": "what it says"}))
            + "\n\n### The descriptors (the same in every statistic)\n\n" + markdown_table(descriptors)
            + f"\n\n### All {len(columns)} column names\n\n" + markdown_table(columns) + "\n")


def tuning_table_markdown(run: RunDir) -> str:
    """The run's tuning summary (trials, time, best held-out log-loss and settings per model), or a
    note that the run did not tune and how to build the tuned one."""
    from geomusic_lib.training.tune import tuning_summary

    summary = tuning_summary(run)
    if summary.empty:
        return ("```{note}\nThis run did not tune (`tune.enabled: false`): every model trained with the settings "
                "of its params file. `make book PARAMS=params/tuned.yaml` builds the tuned run.\n```\n")
    return (markdown_table(summary) + "\n\nTrials were scored on held-out rows only, never a test row: with "
            "`tune.folds` k > 1, each trial trained k times and every training row was scored once, out of fold. "
            "The models then trained with the best settings. Every trial is in the study's storage (`tune.storage`; by "
            "default `runs/<run_name>/tuning/<model>/study.db`, Optuna SQLite).\n")


RESULT_TABLES = {  # two tables that each fit the page: is the class right; how far off, how confident
    "Is the class right?": {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy",
                            "top5_accuracy": "top-5 accuracy", "macro_f1": "macro-F1"},
    "How far off, and how confident?": {"region_accuracy": "region accuracy", "continent_accuracy": "continent accuracy",
                                        "mean_km": "mean error (km)", "median_km": "median error (km)", "ece": "ECE"},
}


def results_table_markdown(run: RunDir, root: Path | None = None) -> str:
    """The headline metrics of `eval/metrics.csv` as two Markdown tables (rows by test accuracy),
    each cell with its 95 % CI; a pointer to the fix when the file is missing. Paths are shown
    relative to `root`."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    path = run.metrics_csv
    shown = Path(os.path.relpath(path, root)).as_posix() if root else path.as_posix()
    if not path.is_file():
        return (f"```{{note}}\nNo metrics table yet: `{shown}` does not exist. "
                "Run `make book` (or notebook 07_evaluation) to produce it.\n```\n")
    metrics = read_run_csv(path).sort_values("accuracy", ascending=False, kind="mergesort")
    parts, unscored = [], []
    for heading, columns in RESULT_TABLES.items():
        table = metrics[[c for c in ("model", "kind") if c in metrics.columns]].copy()
        for column, title in columns.items():
            if column in metrics.columns and metrics[column].isna().all():
                unscored.append(title)
            elif column in metrics.columns:
                digits = 0 if column.endswith("_km") else 3
                table[title] = [_with_interval(row, column, digits) for _, row in metrics.iterrows()]
        parts.append(f"**{heading}**\n\n" + markdown_table(table))
    n = f"{int(metrics['n'].iloc[0]):,} test tracks; " if "n" in metrics.columns and metrics["n"].nunique() == 1 else ""
    protocol = split_protocol(json.loads(run.meta.read_text(encoding="utf-8")).get("notes", {})) + " " \
        if run.meta.is_file() else ""
    protocol += weighting_protocol(run)
    if unscored:
        protocol += (f"Not scored: {' and '.join(unscored)} (the labels have no such level, or all of them lie in "
                     "one). ")
    return ("\n\n".join(parts) + f"\n\nEach cell: estimate (95 % bootstrap interval); {n}rows by test accuracy. "
            f"{protocol}All metrics, per-class tables included: `{shown}` and `eval/per_class/`, written by 07_evaluation.\n")


def weighting_protocol(run: RunDir) -> str:
    """Two sentences on the training protocol (bagging and where the ensemble is fitted) and on class
    weighting and the ensemble's objective, from the run's manifest ("" without one)."""
    try:
        plain = read_manifest(run.path)["params"]
    except (FileNotFoundError, KeyError, ValueError):
        return ""
    on = bool(plain.get("train", {}).get("class_weights"))
    chosen = plain.get("evaluate", {}).get("ensemble_objective", "auto")  # resolved once, by Params
    resolved = Params.model_validate({"train": {"class_weights": on, "bagging": plain.get("train", {}).get(
        "bagging", {})}, "evaluate": {"ensemble_objective": chosen}})
    objective = resolved.ensemble_objective()
    weighted = ("Classes are weighted by inverse frequency for every model (train.class_weights: true)"
                if on else "Classes are not weighted, for any model (train.class_weights: false)")
    return f"{bagging_protocol(run, resolved)}{weighted}; the ensemble's weights minimise the " \
           f"{objective.replace('_', ' ')}. "


def bagging_protocol(run: RunDir, params: Params) -> str:
    """One sentence: each model is a bag of k (and the ensemble is fitted out of fold), or one model per split."""
    meta = json.loads(run.meta.read_text(encoding="utf-8")) if run.meta.is_file() else {}
    if "n_tracks" not in meta and params.train.bagging.folds == "auto":
        return ""
    k = params.train.bagging.folds_for(int(meta.get("n_tracks", 0)))
    setting = f"train.bagging.folds: {params.train.bagging.folds}" + (" = " + str(k) if
                                                                        params.train.bagging.folds == "auto" else "")
    if k > 1:
        return (f"Every model is a bag of {k} members per split ({setting}): each trains on {k - 1} of {k} parts "
                "of the training and validation rows and early-stops on the part it leaves out; its test "
                "probabilities are the members' mean, and the ensemble is fitted on the out-of-fold rows. ")
    return (f"One model per split ({setting}): networks early-stop on the validation rows, and the ensemble "
            "is fitted on them. ")


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


def build_book(run: RunDir) -> tuple[float, int]:
    """`jupyter-book build` of the run's book folder (Jupyter Book 1.x); returns (seconds, return
    code). The full log goes to `runs/<name>/book/_build/build.log`."""
    require("jupyter_book", "book")  # the jupyter-book executable comes with it
    exe = Path(sys.executable).with_name("jupyter-book")
    command = [str(exe)] if exe.is_file() else [shutil.which("jupyter-book") or "jupyter-book"]
    start = time.perf_counter()
    done = subprocess.run([*command, "build", str(run.book_dir)], cwd=run.book_dir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = run.book_dir / "_build" / "build.log"
    atomic_write_text(log, done.stdout + done.stderr)
    warnings = [line for line in (done.stdout + done.stderr).splitlines() if "WARNING" in line or "ERROR" in line]
    for line in warnings[:20]:
        print("  " + line)
    if len(warnings) > 20:
        print(f"  ... {len(warnings) - 20} more; see {log}")
    if done.returncode != 0:
        print((done.stdout + done.stderr)[-3000:])
    return seconds, done.returncode
