"""The layering of CONTRIBUTING.md and STYLE.md, checked on the source with `ast`: which module
may import which, and that nothing outside `RunDir` spells out paths inside a run directory."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "geomusic_lib"


def imported_modules(path: Path) -> set[str]:
    """Every `geomusic_lib...` module a file imports (at any depth of the file)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("geomusic_lib")}


def _notebook_imports(path: Path) -> set[str]:
    code = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("%"))
    tmp = ast.parse(code)
    return {n.module for n in ast.walk(tmp) if isinstance(n, ast.ImportFrom) and n.module} | \
           {a.name for n in ast.walk(tmp) if isinstance(n, ast.Import) for a in n.names}


def _forbidden(importer: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in importer if any(m == p or m.startswith(p + ".") for p in prefixes))


RULES = [
    # (files, forbidden module prefixes, why)
    ("models/*.py", ("geomusic_lib.data", "geomusic_lib.features", "geomusic_lib.train", "geomusic_lib.evaluate",
                     "geomusic_lib.metrics", "geomusic_lib.baselines", "geomusic_lib.params"), "models are pure nn.Modules"),
    ("data/*.py", ("geomusic_lib.models", "geomusic_lib.train", "geomusic_lib.baselines", "geomusic_lib.predict",
                   "geomusic_lib.evaluate", "geomusic_lib.features"), "data knows no model, trainer or features"),
    ("features/*.py", ("geomusic_lib.models", "geomusic_lib.train", "geomusic_lib.predict"), "features know no model"),
    ("predict.py", ("geomusic_lib.features", "geomusic_lib.train", "geomusic_lib.baselines"),
     "inference needs only a checkpoint, models and data"),
    ("predict_inputs.py", ("geomusic_lib.features", "geomusic_lib.train", "geomusic_lib.baselines"), "inference"),
    ("train.py", ("geomusic_lib.predict", "geomusic_lib.evaluate", "geomusic_lib.features"), "train uses models and data"),
]
RULES += [(f"{name}.py", ("geomusic_lib.train", "geomusic_lib.baselines"), "evaluation never trains")
          for name in ("ensemble", "evaluate", "metrics", "interpret", "plots", "plots_*", "predictions", "findings",
                       "bookfacts")]


@pytest.mark.parametrize("pattern, forbidden, why", RULES, ids=[r[0] for r in RULES])
def test_imports_follow_the_layers(pattern: str, forbidden: tuple[str, ...], why: str):
    files = sorted(LIB.glob(pattern))
    assert files, pattern
    bad = {str(f.relative_to(ROOT)): _forbidden(imported_modules(f), forbidden) for f in files}
    assert not {f: m for f, m in bad.items() if m}, f"{why}: {bad}"


def test_the_library_never_imports_the_orchestrator():
    users = [str(f.relative_to(ROOT)) for f in LIB.rglob("*.py")
             if f.name != "run.py" and "geomusic_lib.run" in imported_modules(f)]
    assert not users


def test_notebooks_import_session_and_stages_never_the_orchestrator():
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.py")):
        modules = _notebook_imports(path)
        assert "geomusic_lib.run" not in modules, path.name
        assert "geomusic_lib.session" in modules, path.name


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
