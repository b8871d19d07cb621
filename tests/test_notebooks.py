"""The paired notebooks: in sync, free of outputs, with a plain `parameters` cell and the book's skeleton."""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from geomusic_lib.run import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
SKELETON = ["## Overview", "## Prerequisites", "## Imports", "## Summary", "## What's next", "## References"]


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_every_book_notebook_is_a_pair_and_nothing_else_is_numbered():
    numbered = sorted(p.stem for p in NB_DIR.glob("[0-9][0-9]_*.py"))
    assert numbered == list(NOTEBOOKS), "notebooks/ and geomusic_lib.run.NOTEBOOKS disagree"
    for name in NOTEBOOKS:
        assert (NB_DIR / f"{name}.ipynb").is_file(), f"{name}.py has no paired .ipynb: run jupytext --sync"


def test_jupytext_sync_leaves_every_pair_unchanged(tmp_path):
    shutil.copy2(ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    before = {}
    for name in NOTEBOOKS:
        for suffix in (".py", ".ipynb"):
            src = NB_DIR / f"{name}{suffix}"
            shutil.copy2(src, tmp_path / src.name)  # keeps the modification times --sync compares
            before[src.name] = src.read_bytes()
    done = subprocess.run([sys.executable, "-m", "jupytext", "--sync", *sorted(tmp_path.glob("*.py"))],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    changed = [name for name, data in before.items() if (tmp_path / name).read_bytes() != data]
    assert not changed, f"jupytext --sync changed {changed}: run `jupytext --sync notebooks/*.py` and commit both files"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_py_and_ipynb_hold_the_same_cells(name):
    text = jupytext.read(NB_DIR / f"{name}.py")
    nb = jupytext.read(NB_DIR / f"{name}.ipynb")
    def cells(notebook):
        return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in notebook.cells]
    assert cells(text) == cells(nb)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_ipynb_is_committed_without_outputs_and_with_the_python3_kernel(name):
    raw = json.loads((NB_DIR / f"{name}.ipynb").read_text(encoding="utf-8"))
    assert raw["metadata"]["kernelspec"]["name"] == "python3"  # papermill needs it
    for cell in raw["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{name}.ipynb has outputs"
            assert cell.get("execution_count") is None, f"{name}.ipynb has execution counts"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_holds_only_plain_values(name):
    nb = jupytext.read(NB_DIR / f"{name}.py")
    tagged = [c for c in _code_cells(nb) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected exactly one cell tagged 'parameters', found {len(tagged)}"
    values = {}
    for stmt in ast.parse(tagged[0].source).body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name), \
            f"{name}: the parameters cell may only assign plain values, found {ast.unparse(stmt)!r}"
        values[stmt.targets[0].id] = ast.literal_eval(stmt.value)  # raises on anything but a literal
    assert values.get("params_file") == "../params/default.yaml"
    assert "run_name" in values and values["run_name"] is None
    assert not any(k.lower().startswith(("spotipy", "client_", "secret", "token")) for k in values), \
        "secrets are never parameters"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_follows_the_book_skeleton(name):
    nb = jupytext.read(NB_DIR / f"{name}.py")
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {name[:2]} · ")
    positions = [markdown.find(heading) for heading in SKELETON]
    missing = [h for h, pos in zip(SKELETON, positions) if pos < 0]
    assert not missing, f"{name}: missing sections {missing}"
    assert positions == sorted(positions), f"{name}: sections out of order"
    assert "Time to run" in markdown
    first_code = _code_cells(nb)[0].source
    assert "import" in first_code, f"{name}: the first code cell should hold the imports"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_code_cells_stay_short_and_call_the_library(name):
    nb = jupytext.read(NB_DIR / f"{name}.py")
    for cell in _code_cells(nb):
        assert len(cell.source.splitlines()) <= 16, f"{name}: a code cell of {len(cell.source.splitlines())} lines; move logic into geomusic_lib"
        tree = ast.parse(cell.source)
        defined = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
        assert not defined, f"{name}: functions and classes belong in geomusic_lib"
    assert any("open_stage(params_file, run_name" in c.source for c in _code_cells(nb)), \
        f"{name}: load the params with geomusic_lib.run.open_stage(params_file, run_name, ...)"
