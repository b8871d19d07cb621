"""The whole book on a 10,000-event synthetic MIRAGE v1 export (benchmarks/make_mirage_synthetic.py),
with smoke-size models: every notebook runs on MIRAGE's real column set at a size where the
data stages already meet thousands of tracks. The 100K and 1M sizes run from `make bench`
(benchmarks/bench_mirage_scale.py). Stations come from the committed fixture, so no ../shared is needed.
"""
import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import REPO
from test_book import _copy_book_sources


def _synthetic_export(root, events: int) -> None:
    (root / "data").mkdir()
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_mirage_synthetic.py"), "--events", str(events),
                           "--seed", "0", "--shared", str(root / "no_shared"), "--out", str(root / "data" / "MIRAGE.csv")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "stations_sample.csv" in done.stdout  # the committed fixture, not ../shared


@pytest.mark.slow
def test_the_whole_book_runs_on_a_10k_event_synthetic_export(tmp_path):
    root = _copy_book_sources(tmp_path)
    _synthetic_export(root, 10_000)
    smoke = yaml.safe_load((root / "params" / "smoke.yaml").read_text())
    smoke.update(run_name="mirage10k", models=["fcnn", "cnn", "rnn", "attention"], baselines=["majority", "logreg", "random_forest"],
                 data={"source": "mirage", "mirage": {"path": "data/MIRAGE.csv", "min_tracks_per_class": 30,
                                                      "cache_dir": "cache"}},
                 features={"source": "columns"}, train={**smoke["train"], "epochs": 3, "batch_size": 256},
                 baseline_settings={"random_forest": {"n_estimators": 50, "max_train_rows": 2000}})  # 07, its ensemble and 08
    for name in ("cnn", "rnn", "attention"):
        smoke["model"][name]["view"] = "tokens"
    (root / "params" / "mirage10k.yaml").write_text(yaml.safe_dump(smoke))
    done = subprocess.run([sys.executable, "-m", "geomusic_lib", "run", "--params", "params/mirage10k.yaml", "--no-book"],
                          cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = root / "runs" / "mirage10k"
    meta = json.loads((run_dir / "data" / "meta.json").read_text())
    assert len(meta["feature_names"]) == 13 and meta["n_tracks"] > 3000
    assert list((root / "cache").glob("*.parquet"))  # the loader cached its columns
    metrics = pd.read_csv(run_dir / "eval" / "metrics.csv")
    top1 = metrics.drop_duplicates("model").set_index("model")["accuracy"]
    assert top1["logreg"] > top1["majority"]  # the country signal is learnable
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert len(manifest["timings_s"]) >= 10


def test_a_tree_baseline_with_max_train_rows_fits_on_a_subsample_and_a_big_svm_is_refused():
    import numpy as np

    from geomusic_lib.training import SVM_MAX_ROWS, fit_baseline

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(400, 3)), rng.integers(0, 3, 400)
    forest = fit_baseline("random_forest", 0, x, y, {"n_estimators": 3, "bootstrap": False, "max_train_rows": 50})
    assert forest.estimators_[0].tree_.n_node_samples[0] == 50  # the root saw the 50 sampled rows
    assert fit_baseline("random_forest", 0, x, y, {"n_estimators": 3, "bootstrap": False}).estimators_[0].tree_.n_node_samples[0] == 400
    big = np.zeros((SVM_MAX_ROWS + 1, 1))
    with pytest.raises(ValueError, match="baseline svm: 50,001 training rows.*Remove 'svm' from `baselines`"):
        fit_baseline("svm", 0, big, np.arange(len(big)) % 2)


def test_the_cpu_profile_keeps_the_four_network_families_and_bounds_the_trees():
    from geomusic_lib.core import load_params

    cpu, full = load_params(REPO / "params" / "mirage_cpu.yaml"), load_params(REPO / "params" / "mirage.yaml")
    assert set(cpu.models) == set(full.models) == {"fcnn", "cnn", "rnn", "attention"}
    for p in (cpu, full):
        assert all("max_train_rows" in p.baseline_settings[b] for b in ("random_forest", "hist_gb"))


def test_the_book_includes_the_committed_scale_table_or_says_there_is_none(tmp_path):
    from geomusic_lib.book import mirage_scale_markdown

    assert "No scale measurement in this checkout: run `make bench`" in mirage_scale_markdown(tmp_path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "mirage_scale.md").write_text("| notebook | 10,000 events |\n", encoding="utf-8")
    assert mirage_scale_markdown(tmp_path) == "| notebook | 10,000 events |\n"
    assert (REPO / "benchmarks" / "results" / "mirage_scale.md").is_file()
    page = (REPO / "book" / "mirage.md").read_text(encoding="utf-8")
    assert "```{include} _generated/mirage_scale.md" in page.split("## How long it takes")[1]
