"""The Predictor and its CLI: checkpoint alone, name matching, batches, and errors that teach."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from geomusic_lib.data import load_uci, make_splits
from geomusic_lib.models import build_model, CheckpointError
from geomusic_lib.core import params_from_dict
from geomusic_lib.predict import PredictionError, Predictor, read_predictions
from geomusic_lib.predict.cli import main

REPO = Path(__file__).resolve().parents[1]


def train_tiny(out_dir: Path, name: str = "fcnn", epochs: int = 2, **model_hp) -> tuple[Path, object, list]:
    """Train a small model on the 68-feature UCI set (holdout split) with the real trainer."""
    from geomusic_lib.training import train_model

    hp = {"fcnn": {"hidden": [32], "dropout": 0.1}, "attention": {"hidden": 8, "view": "grid"},
          "rnn": {"hidden": 8, "layers": 1}, "cnn": {"channels": [4, 8]}}
    hp[name].update(model_hp)
    params = params_from_dict({"train": {"epochs": epochs, "batch_size": 64}, "model": {name: hp[name]},
                               "device": "cpu"})
    table = load_uci(chromatic=False)
    splits = make_splits(table.frame, params.split, params.seed)
    result = train_model(name, table, splits, params, out_dir / "models" / name, progress=False)
    return result.folds[0].checkpoint, table, splits


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def test_split(trained):
    """The UCI test rows with track ids and features, columns shuffled, plus an extra column."""
    _, table, splits = trained
    rows = table.frame.iloc[splits[0].test]
    cols = list(table.feature_names)
    rng = np.random.default_rng(0)
    shuffled = [cols[i] for i in rng.permutation(len(cols))]
    return rows[["track_id"] + shuffled].assign(comment="ignored").reset_index(drop=True)


def test_predictions_match_the_trainer(trained, test_split):
    ckpt, _, _ = trained
    predictor = Predictor.from_checkpoint(ckpt, device="cpu")
    proba = predictor.predict_proba(test_split, batch_size=7)  # odd batch size: several batches
    from_trainer = read_predictions(ckpt.parent / "predictions.parquet")
    assert from_trainer.classes == predictor.classes
    order = pd.Series(np.arange(len(from_trainer.track_ids)), index=from_trainer.track_ids)
    expected = from_trainer.proba[order[test_split["track_id"]].to_numpy()]
    np.testing.assert_allclose(proba, expected, atol=1e-5)


def test_predict_frame_has_top_k_region_and_distance_choice(trained, test_split):
    predictor = Predictor.from_checkpoint(trained[0], device="cpu")
    out = predictor.predict(test_split, top_k=5)
    assert list(out.columns) == ["track_id"] + [f"top{i}" for i in range(1, 6)] + \
        [f"p{i}" for i in range(1, 6)] + ["region", "distance_aware"]
    assert out["track_id"].tolist() == test_split["track_id"].tolist()
    p = out[[f"p{i}" for i in range(1, 6)]].to_numpy()
    assert (np.diff(p, axis=1) <= 1e-12).all() and (p.sum(axis=1) <= 1 + 1e-6).all()
    assert set(out["top1"]) <= set(predictor.classes) and set(out["distance_aware"]) <= set(predictor.classes)
    region = dict(zip(predictor.classes, predictor.class_region))
    assert (out["region"] == out["top1"].map(region)).all()


def test_column_order_does_not_matter(trained, test_split):
    predictor = Predictor.from_checkpoint(trained[0], device="cpu")
    in_order = test_split[predictor.feature_names]
    np.testing.assert_allclose(predictor.predict_proba(in_order), predictor.predict_proba(test_split))
    np.testing.assert_allclose(predictor.predict_proba(in_order.to_numpy()), predictor.predict_proba(test_split))


def test_cli_round_trips_on_the_uci_test_split(trained, test_split, tmp_path):
    ckpt = trained[0]
    csv_in, csv_out = tmp_path / "tracks.csv", tmp_path / "out.csv"
    test_split.to_csv(csv_in, index=False)
    done = subprocess.run(
        [sys.executable, "-m", "geomusic_lib", "predict", "--checkpoint", str(ckpt), "--input", str(csv_in),
         "--top-k", "5", "--output", str(csv_out), "--device", "cpu", "--batch-size", "50"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    from_cli = pd.read_csv(csv_out, dtype={"track_id": str}, keep_default_na=False)
    in_process = Predictor.from_checkpoint(ckpt, device="cpu").predict(test_split, top_k=5)
    pd.testing.assert_frame_equal(from_cli, in_process, check_dtype=False, atol=1e-9)


def test_cli_reads_parquet_and_npy(trained, test_split, tmp_path, capsys):
    predictor = Predictor.from_checkpoint(trained[0], device="cpu")
    test_split.to_parquet(tmp_path / "tracks.parquet")
    np.save(tmp_path / "tracks.npy", test_split[predictor.feature_names].to_numpy())
    assert main(["--checkpoint", str(trained[0]), "--input", str(tmp_path / "tracks.parquet"),
                 "--output", str(tmp_path / "a.parquet"), "--top-k", "3"]) == 0
    assert main(["--checkpoint", str(trained[0]), "--input", str(tmp_path / "tracks.npy"), "--top-k", "3"]) == 0
    from_npy = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)
    from_parquet = pd.read_parquet(tmp_path / "a.parquet")
    assert "track_id" not in from_npy.columns and len(from_npy) == len(test_split)
    pd.testing.assert_frame_equal(from_npy, from_parquet.drop(columns="track_id"), check_dtype=False, atol=1e-9)


# --------------------------------------------------------------------------- bad input
def test_missing_columns_are_listed(trained, test_split):
    predictor = Predictor.from_checkpoint(trained[0], device="cpu")
    dropped = predictor.feature_names[3:5]
    with pytest.raises(PredictionError, match="2 feature column") as err:
        predictor.predict(test_split.drop(columns=dropped))
    assert all(name in str(err.value) for name in dropped)


def test_wrong_feature_count_in_npy(trained, tmp_path):
    path = tmp_path / "wide.npy"
    np.save(path, np.zeros((3, 116)))
    with pytest.raises(PredictionError, match="116 features per track.*trained on 68"):
        Predictor.from_checkpoint(trained[0], device="cpu").predict(path)


def test_nan_is_refused_with_the_feature_name(trained, test_split):
    predictor = Predictor.from_checkpoint(trained[0], device="cpu")
    bad = test_split.copy()
    bad.loc[4, predictor.feature_names[7]] = np.nan
    with pytest.raises(PredictionError, match=f"NaN.*row 4.*{predictor.feature_names[7]}"):
        predictor.predict(bad)


def test_empty_inputs(trained, test_split, tmp_path):
    predictor = Predictor.from_checkpoint(trained[0], device="cpu")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(PredictionError, match="empty"):
        predictor.predict(tmp_path / "empty.csv")
    test_split.iloc[:0].to_csv(tmp_path / "header_only.csv", index=False)
    with pytest.raises(PredictionError, match="no rows"):
        predictor.predict(tmp_path / "header_only.csv")
    np.save(tmp_path / "none.npy", np.zeros((0, 68)))
    with pytest.raises(PredictionError, match="no rows"):
        predictor.predict(tmp_path / "none.npy")


def test_input_of_another_feature_set(trained):
    predictor = Predictor.from_checkpoint(trained[0], device="cpu")
    spotify_like = pd.DataFrame({"danceability": [0.5], "energy": [0.7], "tempo": [120.0]})
    with pytest.raises(PredictionError, match="another feature set"):
        predictor.predict(spotify_like)


def test_cli_reports_errors_without_a_traceback(trained, tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((2, 10)))
    done = subprocess.run(
        [sys.executable, "-m", "geomusic_lib", "predict", "--checkpoint", str(trained[0]), "--input",
         str(tmp_path / "wide.npy")], cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr


def test_not_a_checkpoint(tmp_path):
    torch.save({"hello": 1}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="missing keys"):
        Predictor.from_checkpoint(tmp_path / "x.pt", device="cpu")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="junk.pt"):
        Predictor.from_checkpoint(tmp_path / "junk.pt", device="cpu")


# --------------------------------------------------------------------------- hand-made checkpoint
def hand_checkpoint(view: str = "grid_sequence", model: str = "attention") -> dict:
    """A checkpoint dict with the documented keys, without the trainer (grid view: 2 × 3 features)."""
    torch.manual_seed(0)
    features = [f"{s}_{d}" for s in ("mean", "std") for d in ("a", "b", "c")]
    config = ({"in_channels": 2, "n_classes": 3, "hidden": 4} if model == "attention"
              else {"in_features": 6, "n_classes": 3, "hidden": [5]})
    net = build_model(model, config)
    return {
        "format_version": 1, "model_name": model, "model_config": config,
        "state_dict": net.state_dict(), "classes": ["France", "Japan", "Mali"],
        "class_lat": [46.6, 36.2, 17.6], "class_lon": [2.2, 138.3, -4.0],
        "class_region": ["Western Europe", "Eastern Asia", "Western Africa"],
        "feature_names": features, "view": view, "grid_shape": [2, 3],
        "norm_mean": [0.0] * 6, "norm_std": [1.0] * 6,
    }


def test_hand_made_checkpoint_with_a_grid_view(tmp_path):
    torch.save(hand_checkpoint(), tmp_path / "ckpt.pt")
    predictor = Predictor.from_checkpoint(tmp_path / "ckpt.pt", device="cpu")
    x = pd.DataFrame(np.random.default_rng(1).normal(size=(9, 6)), columns=predictor.feature_names)
    out = predictor.predict(x, top_k=10)  # more than the 3 classes: clipped
    assert [c for c in out.columns if c.startswith("top")] == ["top1", "top2", "top3"]
    assert np.allclose(out[["p1", "p2", "p3"]].sum(axis=1), 1)
    assert predictor.prepare(x).x.shape == (9, 3, 2)  # (N, W descriptors, H statistics)
    assert predictor.embed(x).shape == (9, 8)


def test_weights_that_do_not_fit_the_model(tmp_path):
    ckpt = hand_checkpoint(view="vector", model="fcnn")
    ckpt["model_config"] = {**ckpt["model_config"], "hidden": [7]}
    with pytest.raises(CheckpointError, match="do not fit"):
        Predictor.from_dict(ckpt, device="cpu")


def _frames_checkpoint() -> dict:
    """An attention model over 2-channel frame sequences, with per-channel normalisation."""
    return {**hand_checkpoint(view="frames"), "feature_names": ["frame_c00", "frame_c01"], "grid_shape": None,
            "norm_mean": [1.0, -2.0], "norm_std": [2.0, 0.5]}


def test_frames_model_predicts_from_the_feature_folder_and_from_arrays(tmp_path):
    from geomusic_lib.data import write_frames

    rng = np.random.default_rng(3)
    frames = {f"t{i}": rng.normal(size=(5 + 3 * i, 2)).astype(np.float32) for i in range(4)}
    write_frames(frames, tmp_path / "features", ["c0", "c1"])
    predictor = Predictor.from_dict(_frames_checkpoint(), device="cpu")
    from_folder = predictor.predict(tmp_path / "features", top_k=2)
    assert from_folder["track_id"].tolist() == list(frames)
    assert predictor.predict(tmp_path / "features" / "frames", top_k=2).equals(from_folder)
    proba = predictor.predict_proba(list(frames.values()))
    assert np.allclose(proba.sum(axis=1), 1)
    one = predictor.predict_proba([frames["t3"]])  # padding of the others never changes a track's answer
    assert np.allclose(one[0], proba[3], atol=1e-5)
    batch = predictor.prepare([frames["t0"]])
    expected = (frames["t0"] - np.array([1.0, -2.0])) / np.array([2.0, 0.5])
    assert np.allclose(batch.x[0, :5].numpy(), expected, atol=1e-6)  # normalised per channel


def test_frames_model_explains_wrong_inputs(tmp_path):
    predictor = Predictor.from_dict(_frames_checkpoint(), device="cpu")
    with pytest.raises(PredictionError, match="reads frame sequences"):
        predictor.predict(pd.DataFrame({"frame_c00": [1.0], "frame_c01": [2.0]}))
    with pytest.raises(PredictionError, match="track b: expected frames × 2 channels"):
        predictor.predict({"a": np.zeros((3, 2)), "b": np.zeros((3, 5))})
    with pytest.raises(PredictionError, match="NaN"):
        predictor.predict([np.full((3, 2), np.nan)])
    with pytest.raises(PredictionError, match="no frames found"):
        predictor.predict(tmp_path)



def _collapsed_uci_predictor(tmp_path: Path) -> Predictor:
    """An untrained fcnn on the loader's 72 collapsed UCI columns (`s<k>_chroma` once per statistic)."""
    from geomusic_lib.data import load_uci
    from geomusic_lib.models import build_model, save_checkpoint

    torch.manual_seed(0)
    table = load_uci()
    n, classes = len(table.feature_names), ["India", "Japan", "Mali"]
    config = {"in_features": n, "n_classes": len(classes), "hidden": [8]}
    checkpoint = {"format_version": 1, "model_name": "fcnn", "model_config": config,
                  "state_dict": build_model("fcnn", config).state_dict(), "classes": classes,
                  "class_lat": [28.6, 35.7, 12.6], "class_lon": [77.2, 139.7, -8.0],
                  "class_region": ["Southern Asia", "Eastern Asia", "Western Africa"],
                  "feature_names": table.feature_names, "view": "vector", "grid_shape": None,
                  "norm_mean": table.features.mean(axis=0).tolist(), "norm_std": table.features.std(axis=0).tolist()}
    return Predictor.from_checkpoint(save_checkpoint(checkpoint, tmp_path / "checkpoint_best.pt"), device="cpu")


def test_the_twelve_chroma_copies_map_onto_a_checkpoint_of_collapsed_columns(tmp_path):
    """A table straight from the UCI file (116 columns) predicts with a 72-column checkpoint as its collapsed form
    does; copies that differ are refused in one line that says what to do."""
    from geomusic_lib.data import load_uci

    predictor = _collapsed_uci_predictor(tmp_path)
    assert "s1_chroma" in predictor.feature_names and "s1_chroma01" not in predictor.feature_names
    wide, narrow = load_uci(collapse_chroma=False), load_uci()
    rows = wide.frame.iloc[::53][["track_id", *wide.feature_names]].reset_index(drop=True)
    expected = predictor.predict(narrow.frame.iloc[::53][["track_id", *narrow.feature_names]], top_k=3)
    got = predictor.predict(rows, top_k=3)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True))
    rows.loc[0, "s2_chroma07"] += 1.0
    with pytest.raises(PredictionError) as err:
        predictor.predict(rows, top_k=3)
    message = str(err.value)
    assert "\n" not in message and "s2_chroma07 differ from s2_chroma01" in message
    assert "Rename the column that holds the value to s2_chroma" in message

def test_an_unknown_output_suffix_fails_in_one_line_before_any_work(tmp_path, capsys):
    """`--output x.xlsx` used to write CSV text and exit 0."""
    missing_checkpoint = tmp_path / "no_such_checkpoint.pt"  # never read: the output is refused first
    code = main(["--checkpoint", str(missing_checkpoint), "--input", str(tmp_path / "in.csv"),
                 "--output", str(tmp_path / "out.xlsx")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "out.xlsx: --output must end in .csv or .parquet (got .xlsx)" in err
    assert not (tmp_path / "out.xlsx").exists()



def test_a_text_cell_is_named_by_row_track_and_value(tmp_path):
    """The non-numeric message named the column only; the NaN message already named the row."""
    from geomusic_lib.data import load_uci

    predictor = _collapsed_uci_predictor(tmp_path)
    table = load_uci()
    rows = table.frame.iloc[::53][["track_id", *table.feature_names]].reset_index(drop=True)
    rows["s1_timbre03"] = rows["s1_timbre03"].astype(object)
    rows.loc[4, "s1_timbre03"] = "n/a"
    with pytest.raises(PredictionError) as err:
        predictor.predict(rows, top_k=1)
    message = str(err.value)
    assert "\n" not in message and "['s1_timbre03'] are not numeric" in message
    assert f"(first: row 4, track {rows.loc[4, 'track_id']}, value 'n/a' in s1_timbre03)" in message


def test_the_users_id_column_is_carried_through(tmp_path, trained, test_split, capsys):
    """An input without `track_id` used to lose the user's own id column in the output."""
    ckpt, _, _ = trained
    mine = test_split.rename(columns={"track_id": "isrc"})[["isrc", *test_split.columns[1:]]]
    path = tmp_path / "mine.csv"
    mine.to_csv(path, index=False)
    predictor = Predictor.from_checkpoint(ckpt, device="cpu")
    default = predictor.predict(mine, top_k=2)  # the first column that is not a feature
    assert default.columns[0] == "isrc" and default["isrc"].tolist() == mine["isrc"].astype(str).tolist()
    chosen = predictor.predict(mine, top_k=2, id_column="comment")
    assert chosen.columns[0] == "comment" and set(chosen["comment"]) == {"ignored"}
    out = tmp_path / "out.csv"
    assert main(["--checkpoint", str(ckpt), "--input", str(path), "--id-column", "isrc", "--output", str(out)]) == 0
    assert pd.read_csv(out, dtype=str)["isrc"].tolist() == mine["isrc"].astype(str).tolist()
    assert main(["--checkpoint", str(ckpt), "--input", str(path), "--id-column", "nope", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--id-column 'nope' is not a column of the input (isrc," in err


def test_chroma_copies_are_not_taken_for_an_id_column(tmp_path):
    from geomusic_lib.data import load_uci

    predictor = _collapsed_uci_predictor(tmp_path)
    wide = load_uci(collapse_chroma=False)
    rows = wide.frame.iloc[::53][wide.feature_names].reset_index(drop=True)  # the file's 116 columns, no id
    assert "s1_chroma02" not in predictor.predict(rows, top_k=1).columns
    assert predictor.predict(rows, top_k=1).columns[0] == "top1"
