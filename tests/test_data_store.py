"""The run's data files: what 01_data_prep writes and every later stage reads."""
import json

import numpy as np
import pandas as pd

from geomusic_lib.data import attach_features, load_run_data, prepare_run_data
from geomusic_lib.core import params_from_dict, RunDir


def test_prepare_and_load_uci_run(tmp_path):
    params = params_from_dict({"runs_dir": str(tmp_path), "run_name": "t"})
    table, splits = prepare_run_data(params, RunDir(params.run_dir))
    data = load_run_data(tmp_path / "t")
    assert len(data.table.frame) == 1059 and data.table.grid_shape == (4, 18)
    assert [len(s.test) for s in data.splits] == [len(s.test) for s in splits]
    classes = data.classes
    assert len(classes) == 33 and list(classes["class"]) == sorted(classes["class"])
    indonesia = classes.set_index("class").loc["Indonesia"]
    assert indonesia["region"] == "South-eastern Asia" and indonesia["continent"] == "Asia"
    assert np.isclose(indonesia["lat"], -6.17) and indonesia["n_tracks"] == 25
    meta = json.loads((tmp_path / "t" / "data" / "meta.json").read_text())
    assert "derived" in meta["notes"]["label_note"]


def test_mirage_run_gets_its_table_from_feature_extraction(tmp_path, mirage_v1):
    params = params_from_dict({"runs_dir": str(tmp_path), "run_name": "m", "data": {
        "source": "mirage", "mirage": {"path": str(mirage_v1), "min_reliability": 0.0, "min_tracks_per_class": 8}}})
    table, _ = prepare_run_data(params, RunDir(params.run_dir))
    assert not (tmp_path / "m" / "data" / "table.parquet").exists()  # no audio features in the export
    some = table.frame["track_id"].iloc[::2]
    features = pd.DataFrame({"f1": np.arange(len(some), dtype=float)}, index=some.to_numpy())
    attach_features(RunDir(params.run_dir), features)
    data = load_run_data(tmp_path / "m")
    assert set(data.table.frame["track_id"]) == set(some) and data.table.feature_names == ["f1"]
    kept = sum(len(s.train) + len(s.val) + len(s.test) for s in data.splits)
    assert kept == len(some)  # splits are stored by id, so tracks without features drop out


def test_feature_stage_extracts_in_file_columns_for_a_mirage_run(tmp_path, mirage_v1):
    from geomusic_lib.pipeline import extract_features as run_feature_stage

    raw = pd.read_csv(mirage_v1)
    rng = np.random.default_rng(0)
    for name in ("danceability", "energy", "valence"):
        raw[f"track_sp_{name}"] = rng.random(len(raw))
    raw.loc[::3, "track_sp_energy"] = np.nan  # some tracks lack features
    path = tmp_path / "with_features.csv"
    raw.to_csv(path, index=False)
    params = params_from_dict({"runs_dir": str(tmp_path), "run_name": "c", "features": {"source": "columns"},
                               "data": {"source": "mirage", "mirage": {"path": str(path), "min_reliability": 0.0,
                                                                       "min_tracks_per_class": 8}}})
    prepare_run_data(params, RunDir(params.run_dir))
    summary = run_feature_stage(params, RunDir(params.run_dir))
    assert summary["extracted"] and summary["features"] >= 3
    table = load_run_data(tmp_path / "c").table
    assert {"track_sp_danceability", "track_sp_valence"} <= set(table.feature_names)
    assert not any(name.startswith(("location_", "station_")) for name in table.feature_names)


def test_feature_stage_is_a_no_op_for_uci(tmp_path):
    from geomusic_lib.pipeline import extract_features as run_feature_stage

    params = params_from_dict({"runs_dir": str(tmp_path), "run_name": "u"})
    prepare_run_data(params, RunDir(params.run_dir))
    assert run_feature_stage(params, RunDir(params.run_dir)) == {"extracted": False, "source": "uci", "tracks": 1059, "features": 72}


def test_region_classes_know_their_continent():
    from geomusic_lib.data import build_class_table as class_table

    frame = pd.DataFrame({"label": ["Western Africa", "Northern Europe", "Caribbean"], "lat": np.nan, "lon": np.nan})
    table = class_table(frame).set_index("class")
    assert table.loc["Western Africa", "continent"] == "Africa" and table.loc["Caribbean", "continent"] == "North America"
    assert table.loc["Northern Europe", "region"] == "Northern Europe"
