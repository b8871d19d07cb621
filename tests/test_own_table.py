"""A table of your own with only `data:` set (the README's "Your own data"): grouped by its artist
column, identical feature vectors kept on one side, and the book saying so."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geomusic_lib.book.facts import split_markdown
from geomusic_lib.book.findings import split_protocol
from geomusic_lib.core import params_from_dict, RunDir
from geomusic_lib.data import load_run_data, prepare_run_data, shared_between
from geomusic_lib.data.duplicates import duplicate_counts, join_identical

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "own_table" / "tracks.csv"


def own_params(tmp_path: Path, **data: object) -> object:
    table = {"path": str(FIXTURE), "label_column": "country"}
    return params_from_dict({"runs_dir": str(tmp_path), "run_name": "mine",
                             "data": {"source": "table", "table": table, **data}})


def sides(split) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each pair of parts that must share nothing: train + validation against test, train against validation."""
    return [(np.r_[split.train, split.val], split.test), (split.train, split.val)]


@pytest.mark.parametrize("strategy", ["holdout", "kfold"])
def test_only_data_set_shares_no_artist_and_no_feature_vector_between_splits(tmp_path, strategy):
    params = own_params(tmp_path)
    params.split.strategy, params.split.folds = strategy, 5
    table, splits = prepare_run_data(params, RunDir(params.run_dir))
    assert table.notes["group_column"] == "artist"
    counts = table.notes["duplicates"]
    assert (counts["rows"], counts["sets"], counts["cross_label_rows"]) == (24, 12, 24)
    for split in splits:
        for inside, outside in sides(split):
            assert shared_between(table.frame, table.feature_names, inside, outside) == {"artists": 0, "vectors": 0}


def test_keep_lets_identical_vectors_straddle_the_split_and_drop_removes_the_copies(tmp_path):
    kept_params = own_params(tmp_path, duplicates="keep")
    kept, splits = prepare_run_data(kept_params, RunDir(kept_params.run_dir))
    straddling = shared_between(kept.frame, kept.feature_names, *sides(splits[0])[0])
    assert straddling["artists"] == 0 and straddling["vectors"] > 0  # the leak that `group` closes
    assert "a test row may have an identical twin" in kept.notes["duplicates"]["note"]
    dropped_params = own_params(tmp_path / "d", duplicates="drop")
    dropped, _ = prepare_run_data(dropped_params, RunDir(dropped_params.run_dir))
    assert len(dropped.frame) == len(kept.frame) - 12 and dropped.notes["duplicates"]["dropped"] == 12
    assert duplicate_counts(dropped.frame, dropped.feature_names)["rows"] == 0


def test_the_manifest_data_page_and_results_table_name_the_grouping(tmp_path):
    from geomusic_lib.pipeline import stages
    from geomusic_lib.core.manifest import write_manifest

    params = own_params(tmp_path)
    write_manifest(params)
    stages.prepare_data(params, RunDir(params.run_dir))
    manifest = json.loads(RunDir(params.run_dir).manifest.read_text(encoding="utf-8"))
    assert manifest["split_grouping"]["group_column"] == "artist"
    assert manifest["split_grouping"]["duplicates"]["cross_label_rows"] == 24
    run = RunDir(params.run_dir)
    page = split_markdown(run, load_run_data(run))
    assert "grouped by column 'artist'" in page and "24 rows share their feature vector" in page
    assert "Holdout split: 0 artists and 0 identical feature vectors are on both sides" in page
    notes = json.loads(run.meta.read_text(encoding="utf-8"))["notes"]
    assert split_protocol(notes) == ("The split is grouped by column 'artist'; 24 tracks with identical feature "
                                     "vectors (24 with different labels) are kept on one side (data.duplicates: group).")


def test_protocol_sentences_for_other_sources():
    assert split_protocol({"duplicates": {"rows": 0}}) == ("The split is not grouped by artist (the source names "
                                                          "none); no two tracks have identical feature vectors.")
    assert split_protocol({"group_column": None, "grouped_by": None}) == \
        "The split is not grouped (data.table.group_column: none)."
    assert split_protocol({"grouped_by": "tune variant"}) == "The split is grouped by tune variant."


def test_joining_identical_vectors_keeps_groups_whole_and_changes_nothing_without_them():
    rng = np.random.default_rng(0)
    groups = np.array([f"a{g}" for g in rng.integers(0, 40, 300)])
    unique = rng.permutation(300).astype(np.uint64)
    assert (join_identical(groups, unique) == groups).all()  # no duplicates: the same group names
    hashes = rng.integers(0, 120, 300).astype(np.uint64)
    joined = join_identical(groups, hashes)
    frame = pd.DataFrame({"group": groups, "hash": hashes, "joined": joined})
    assert (frame.groupby("group")["joined"].nunique() == 1).all()
    assert (frame.groupby("hash")["joined"].nunique() == 1).all()
    assert len(set(joined)) < len(set(groups))


def test_the_fixture_is_what_its_generator_writes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_tracks", FIXTURE.with_name("make_tracks.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = pd.read_csv(FIXTURE)
    pd.testing.assert_frame_equal(module.make_tracks(), written, check_dtype=False, atol=1e-9)


def test_the_readme_documents_every_table_key_with_its_default_and_the_book_includes_it():
    from geomusic_lib.book.pages import own_data_markdown
    from geomusic_lib.core.params import DataParams, TableParams

    section = own_data_markdown(ROOT)
    rows = {line.split("|")[1].strip(): line.split("|")[3].strip() for line in section.splitlines()
            if line.startswith("| `data.")}
    documented = {key.strip("` ") for cell in rows for key in cell.split(",")}
    assert {f"data.table.{name}" for name in TableParams.model_fields} | {"data.duplicates"} == documented
    defaults = {"label_column": "`label`", "min_tracks_per_class": "`1`", "encoding": "`utf-8`", "sep": "`,`",
                "decimal": "`.`"}
    for name, shown in defaults.items():
        assert rows[f"`data.table.{name}`"].startswith(shown) and f"`{TableParams().__getattribute__(name)}`" == shown
    assert rows["`data.duplicates`"] == f"`{DataParams().duplicates}`"
    assert "tests/fixtures/own_table/tracks.csv" in section and FIXTURE.is_file()
    assert "points to this section" in section


def test_the_readme_names_the_artist_like_columns_the_loader_uses():
    from geomusic_lib.book.pages import own_data_markdown
    from geomusic_lib.data.table import ARTIST_LIKE_COLUMNS

    row = next(line for line in own_data_markdown(ROOT).splitlines() if line.startswith("| `data.table.group_column`"))
    assert [name for name in ARTIST_LIKE_COLUMNS if f"`{name}`" not in row] == []


def test_the_readme_example_is_the_shipped_params_file_and_it_validates():
    import re

    import yaml

    from geomusic_lib.book.pages import own_data_markdown
    from geomusic_lib.core import load_params

    block = re.search(r"```yaml\n(.*?)```", own_data_markdown(ROOT), flags=re.S).group(1)
    shipped = ROOT / "params" / "own_table.yaml"
    assert yaml.safe_load(block) == yaml.safe_load(shipped.read_text(encoding="utf-8"))
    params = load_params(shipped)
    assert params.data.source == "table" and params.resolve(params.data.table.path) == FIXTURE
