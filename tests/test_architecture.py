"""The library by job: the layers of CONTRIBUTING.md as import-linter contracts (pyproject.toml), and
the rules import-linter cannot express: notebooks, run paths only through `RunDir`, short functions."""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "geomusic_lib"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the copy of `geomusic_lib` found under `package_parent`, with the repository's contracts."""
    env = {"PYTHONPATH": str(package_parent), "PATH": "/usr/bin:/bin", "HOME": str(package_parent)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
                          cwd=package_parent, env=env, capture_output=True, text=True, timeout=120)


def test_the_layers_hold(tmp_path):
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_import_against_a_layer_fails_and_names_the_import(tmp_path):
    shutil.copytree(LIB, tmp_path / "geomusic_lib", ignore=shutil.ignore_patterns("__pycache__"))
    fcnn = tmp_path / "geomusic_lib" / "models" / "fcnn.py"
    fcnn.write_text(fcnn.read_text(encoding="utf-8") + "\nfrom geomusic_lib.training import trainer  # noqa\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "geomusic_lib.models is not allowed to import geomusic_lib.training" in done.stdout
    assert "geomusic_lib.models.fcnn -> geomusic_lib.training" in done.stdout


def test_the_top_level_holds_only_subpackages():
    modules = sorted(p.name for p in LIB.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py"]
    for package in (p for p in LIB.iterdir() if p.is_dir() and p.name != "__pycache__"):
        init = package / "__init__.py"
        if not init.is_file():  # data folders inside a package have none
            continue
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{init}: say the job in a docstring"


def _notebook_imports(path: Path) -> set[str]:
    code = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("%"))
    tree = ast.parse(code)
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | \
           {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


def test_notebooks_import_public_names_and_never_the_orchestrator():
    """Notebooks are no package, so import-linter cannot see them: they import subpackages, not their modules."""
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        modules = {m for m in _notebook_imports(path) if m.startswith("geomusic_lib")}
        assert "geomusic_lib.pipeline" in modules, path.name
        assert all(m.count(".") <= 1 for m in modules), (path.name, sorted(modules))
        assert not {m for m in modules if m.startswith("geomusic_lib.pipeline.run")}, path.name


def test_only_rundir_spells_out_paths_inside_a_run():
    pattern = re.compile(r'run_dir ?/ ?"')
    offenders = [f"{p.relative_to(ROOT)}:{i}" for folder in ("geomusic_lib", "notebooks", "benchmarks")
                 for p in (ROOT / folder).rglob("*.py") if p.name != "rundir.py"
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not offenders


def test_functions_and_modules_stay_short():
    long = []
    for path in LIB.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 450:
            long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not long
