"""`runs/<name>/manifest.json`: what produced a run (params, library versions, git commit).

A run directory can be shared or archived on its own; the manifest is what lets a reader
tell which code and settings made it. No secret is ever written here: the params schema
has no credential fields, and the environment is not recorded.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from geomusic_lib.core.fileio import atomic_write_json
from geomusic_lib.core.params import Params
from geomusic_lib.core.rundir import RunDir

TRACKED_PACKAGES = (
    "geomusic", "torch", "numpy", "pandas", "scikit-learn", "plotly", "shap", "pydantic",
    "papermill", "jupytext", "jupyter-book", "spotipy",
)


def library_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(repo: str | Path = ".") -> dict[str, Any]:
    """Commit hash and whether tracked files differ from it (None outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def accelerator() -> dict[str, Any]:
    """The devices torch can see, so timings in the book can be read in context."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return {"cuda": False, "devices": []}
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {"cuda": n > 0, "devices": [torch.cuda.get_device_name(i) for i in range(n)],
            "cpu_threads": torch.get_num_threads()}


def made_at(repo: str | Path = ".") -> str:
    """`commit 1a2b3c4d5e` (plus `with uncommitted changes` when tracked files differ), for a results table."""
    state = git_state(repo)
    if not state["commit"]:
        return "outside a git checkout"
    return f"commit {state['commit'][:10]}" + (" with uncommitted changes" if state["dirty"] else "")


#: the first line of a benchmark's table under benchmarks/out/: where it was made (update_readme.py reads it)
MADE_AT_STAMP = "<!-- made at: {} -->"


def build_manifest(params: Params, params_file: str | Path | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest as a plain dict (see `write_manifest`)."""
    return {
        "run_name": params.run_name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "params_file": str(params_file) if params_file is not None else None,
        "params": params.to_plain(),
        "versions": library_versions(),
        "git": git_state(params.root),
        "platform": {"system": platform.platform(), "machine": platform.machine(), "executable": sys.executable},
        "accelerator": accelerator(),
        **(extra or {}),
    }


def write_manifest(params: Params, params_file: str | Path | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write `runs/<name>/manifest.json`, keeping keys an earlier writer added (e.g. timings)."""
    path = RunDir(params.run_dir).manifest
    manifest = read_manifest(params.run_dir) if path.is_file() else {}
    manifest.update(build_manifest(params, params_file, extra))
    return atomic_write_json(path, manifest)


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """Read a run's manifest; a missing file says which command writes it."""
    path = RunDir(run_dir).manifest
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest. `geomusic run --params ...` writes it.")
    return json.loads(path.read_text(encoding="utf-8"))


def update_manifest(run_dir: str | Path, **entries: Any) -> Path:
    """Add or replace top-level entries (e.g. `timings`) in an existing manifest."""
    manifest = read_manifest(run_dir)
    manifest.update(entries)
    return atomic_write_json(RunDir(run_dir).manifest, manifest)
