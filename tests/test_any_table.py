"""`make book PARAMS=<a table's params with only data: set>`: every notebook runs on a non-UCI table
with the default settings (views chosen from the data, TabM, ensemble, SHAP), end to end."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from geomusic_lib.data import load_run_data, shared_between

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "own_table" / "tracks.csv"  # the README's example, with cross-labelled copies
SOURCES = ["_config.yml", "_toc.yml", "jupytext.toml", "book", "notebooks", "params"]


@pytest.mark.slow
def test_every_notebook_runs_on_a_table_with_only_data_set(tmp_path):
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("notebooks", "_generated", ".ipynb_*")
                            if name == "book" else shutil.ignore_patterns(".ipynb_checkpoints"))
        else:
            shutil.copy2(src, tmp_path / name)
    data = {"source": "table", "table": {"path": str(FIXTURE), "label_column": "country"}}  # `artist` groups it
    (tmp_path / "params" / "table.yaml").write_text(yaml.safe_dump({"data": data}), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "geomusic_lib", "run", "--params", "params/table.yaml", "--no-book"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    run_dir = tmp_path / "runs" / "default"
    views = {name: torch.load(run_dir / "models" / name / "checkpoint_best.pt", weights_only=True)["view"]
             for name in ("fcnn", "tabm", "cnn", "rnn", "attention")}
    assert views == {"fcnn": "vector", "tabm": "vector", "cnn": "tokens", "rnn": "tokens", "attention": "tokens"}
    assert (run_dir / "models" / "ensemble" / "predictions.parquet").is_file()
    assert (run_dir / "eval" / "metrics.csv").is_file()
    data = load_run_data(run_dir)  # the same hit charting in several countries stays on one side
    assert data.table.notes["group_column"] == "artist" and data.table.notes["duplicates"]["cross_label_rows"] > 0
    for split in data.splits:
        both = shared_between(data.table.frame, data.table.feature_names, np.r_[split.train, split.val], split.test)
        assert both == {"artists": 0, "vectors": 0}
