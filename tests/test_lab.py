"""The ways users run notebooks besides the orchestrator: JupyterLab (a kernel whose cwd is
notebooks/, Run All twice) and plain papermill from the repository root."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from geomusic_lib.core import RunDir

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["_config.yml", "_toc.yml", "jupytext.toml", "book", "notebooks", "params"]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The notebooks, params and book sources in a fresh folder (no runs/)."""
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        else:
            shutil.copy2(src, tmp_path / name)
    return tmp_path


@pytest.mark.slow
def test_run_all_twice_in_one_jupyterlab_kernel(checkout: Path):
    """As in JupyterLab: the kernel starts in notebooks/, runs every cell of 01 with its own
    parameters, then every cell again. Nothing changes the kernel's directory, and a hand run
    writes to the run named "lab", never to the book's run."""
    from nbclient import NotebookClient

    nb = nbformat.read(checkout / "notebooks" / "01_data_prep.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(checkout / "notebooks")}})  # no 1-2 s of teardown
    with client.setup_kernel():
        for _ in range(2):
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)  # raises CellExecutionError on a failing cell
    lab = RunDir(checkout / "runs" / "lab")
    assert lab.splits.is_file() and lab.manifest.is_file()
    assert not (checkout / "runs" / "default").exists()


@pytest.mark.slow
def test_plain_papermill_from_the_repository_root_runs_a_chain_and_writes_the_manifest(checkout: Path):
    papermill = Path(sys.executable).with_name("papermill")
    for name in ("01_data_prep", "02_feature_extraction", "03_fcnn"):
        done = subprocess.run([str(papermill), f"notebooks/{name}.ipynb", f"out_{name}.ipynb",
                               "-p", "params_file", "params/smoke.yaml", "-p", "run_name", "plain"],
                              cwd=checkout, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    plain = RunDir(checkout / "runs" / "plain")
    manifest = json.loads(plain.manifest.read_text(encoding="utf-8"))
    assert manifest["run_name"] == "plain" and manifest["params_file"] == "params/smoke.yaml"
    assert plain.predictions("fcnn").is_file()


@pytest.mark.slow
def test_a_missing_earlier_stage_is_one_line_naming_the_notebooks_and_command(checkout: Path):
    papermill = Path(sys.executable).with_name("papermill")
    done = subprocess.run([str(papermill), "notebooks/03_fcnn.ipynb", "out.ipynb", "-p", "params_file",
                           "params/smoke.yaml", "-p", "run_name", "fresh"], cwd=checkout, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode != 0
    out = nbformat.read(checkout / "out.ipynb", as_version=4)
    errors = [o for c in out.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].traceback == [f"DataError: {errors[0].evalue}"]
    assert "01_data_prep and 02_feature_extraction" in errors[0].evalue and "--run-name fresh" in errors[0].evalue
