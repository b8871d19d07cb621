"""The paired notebooks: in sync, free of outputs, with a plain `parameters` cell and the book's skeleton;
thin (short cells that call the library, never the orchestrator, never a hand-built run path)."""
from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from geomusic_lib.book import MODEL_NOTEBOOKS, model_source, NOTEBOOKS, show_model_source
from geomusic_lib.models import MODELS

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
SKELETON = ["## Overview", "## Prerequisites", "## Imports", "## Summary", "## What's next", "## References"]
MAX_CELL_LINES = 12  # the imports cell excepted


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_every_book_notebook_is_a_pair_and_nothing_else_is_numbered():
    numbered = sorted(p.stem for p in NB_DIR.glob("[0-9][0-9]_*.py"))
    assert numbered == list(NOTEBOOKS), "notebooks/ and geomusic_lib.book.notebooks.NOTEBOOKS disagree"
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
def test_parameters_cell_holds_typed_plain_values_with_help(name):
    """`name: type = literal  # help`, which `papermill --help-notebook` shows as type and help."""
    nb = jupytext.read(NB_DIR / f"{name}.py")
    tagged = [c for c in _code_cells(nb) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected exactly one cell tagged 'parameters', found {len(tagged)}"
    values = {}
    lines = tagged[0].source.splitlines()
    for stmt in ast.parse(tagged[0].source).body:
        assert isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None, \
            f"{name}: the parameters cell may only assign typed plain values, found {ast.unparse(stmt)!r}"
        value = ast.literal_eval(stmt.value)  # raises on anything but a literal
        assert isinstance(value, eval(ast.unparse(stmt.annotation))), f"{name}: {stmt.target.id} is not its type"
        assert "#" in lines[stmt.lineno - 1], f"{name}: {stmt.target.id} has no help comment"
        values[stmt.target.id] = value
    assert values.get("params_file") == "../params/default.yaml"
    assert values.get("run_name") == "lab"  # hand runs never write into the book's run
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
    for cell in _code_cells(nb)[1:]:  # after the imports
        lines = len(cell.source.splitlines())
        assert lines <= MAX_CELL_LINES, f"{name}: a code cell of {lines} lines; move logic into geomusic_lib"
    for cell in _code_cells(nb):
        tree = ast.parse(cell.source)
        defined = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
        assert not defined, f"{name}: functions and classes belong in geomusic_lib"
    assert any("params, run = open_stage(params_file, run_name" in c.source for c in _code_cells(nb)), \
        f"{name}: open the stage with `params, run = geomusic_lib.pipeline.session.open_stage(params_file, run_name, ...)`"


def _imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_never_import_the_orchestrator(name):
    nb = jupytext.read(NB_DIR / f"{name}.py")
    imported = set().union(*(_imported_modules(c.source) for c in _code_cells(nb)))
    assert "geomusic_lib.pipeline.run" not in imported, \
        f"{name}: imports geomusic_lib.pipeline.run (the orchestrator); use geomusic_lib.pipeline.session and geomusic_lib.pipeline.stages"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_ask_the_run_directory_for_paths(name):
    nb = jupytext.read(NB_DIR / f"{name}.py")
    for cell in _code_cells(nb):
        joins = re.findall(r"run_dir\s*/|\.path\s*/|[\"'](?:data|models|eval|features)/", cell.source)
        assert not joins, f"{name}: builds a run path by hand ({joins}); ask `run` (geomusic_lib.core.rundir.RunDir)"
        assert "params.run_dir" not in cell.source, f"{name}: use `run` from open_stage, not params.run_dir"


def test_this_test_catches_a_hand_built_run_path():
    assert re.findall(r"run_dir\s*/", 'pd.read_csv(params.run_dir / "eval" / "x.csv")')


@pytest.mark.parametrize("name", list(MODEL_NOTEBOOKS))
def test_model_notebooks_show_the_library_source_without_a_copy(name):
    nb = jupytext.read(NB_DIR / f"{name}.py")
    code = "\n".join(c.source for c in _code_cells(nb))
    assert "show_model_source(model_name)" in code
    assert "nn.Module" not in code and "def forward" not in code


@pytest.mark.parametrize("model", sorted(MODELS))
def test_show_model_source_is_the_module_file_as_it_is(model):
    path, source = model_source(model)
    assert path == f"geomusic_lib/models/{model}.py"
    assert source == (ROOT / path).read_text(encoding="utf-8")
    shown = show_model_source(model)._repr_markdown_()
    assert shown.startswith(f"`{path}`") and f"```python\n{source.rstrip()}\n```" in shown
    with pytest.raises(ValueError, match="unknown model"):
        model_source("transformer")
