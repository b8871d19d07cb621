"""Bad input never passes silently: each case fails with one clear line (file, column or key, and the
fix) or gives the right result with a visible note, and no input or earlier output is damaged."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from geomusic_lib.data import DataError, load_table, make_splits
from geomusic_lib.features import FeatureError, extract_features
from geomusic_lib.features.cli import main as features_main
from geomusic_lib.models import build_model, CheckpointError, load_checkpoint
from geomusic_lib.core import FeatureParams, ParamsError, SplitParams, load_params, params_from_dict
from geomusic_lib.predict import PredictionError, Predictor
from geomusic_lib.predict.cli import main as predict_main
from geomusic_lib.core import ENV_VAR, LOCK_FILE, RunLock, RunLockError

REPO = Path(__file__).resolve().parents[1]
TOP50 = REPO / "tests" / "fixtures" / "spotify_country" / "top50_8countries_2025-02-12.csv"
LATIN1 = REPO / "tests" / "fixtures" / "spotify_country" / "top50contry_5countries_latin1.csv"
FEATURES = ["danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness",
            "liveness", "valence", "tempo"]
ANSI = re.compile(r"\x1b\[")


def digest(*paths: Path) -> dict[Path, str]:
    """Content hashes of every file under `paths` (to prove nothing was touched)."""
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*"))) if f.is_file()]
    return {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and not ANSI.search(text), text
    return text


@pytest.fixture
def table_file(tmp_path):
    """Write a changed copy of the real top-50 table and return its path (bytes checked afterwards)."""
    written: list[Path] = []

    def write(change=None, name: str = "tracks.csv", **to_csv) -> Path:
        frame = pd.read_csv(TOP50)
        if change is not None:
            frame = change(frame) if callable(change) else frame
        path = tmp_path / name
        frame.to_csv(path, index=False, **to_csv)
        written.append(path)
        return path

    yield write


def load_unchanged(path: Path, *args, **kwargs):
    """`load_table`, asserting the input file's bytes are the same afterwards."""
    before = digest(path)
    try:
        return load_table(path, *args, **kwargs)
    finally:
        assert digest(path) == before


# --------------------------------------------------------------------------- table source
def _set(frame: pd.DataFrame, rows, column: str, value) -> pd.DataFrame:
    frame[column] = frame[column].astype(object)
    frame.loc[rows, column] = value
    return frame


TABLE_ERRORS = [
    pytest.param(lambda f: f, {"label_column": "origin"}, r"tracks.csv: no column for data.table.label_column: 'origin'",
                 "Set the key to one of these columns", id="missing-label-column"),
    pytest.param(lambda f: f.drop(columns="energy"), {"feature_columns": FEATURES},
                 r"tracks.csv: missing required column\(s\) \['energy'\]", "Found: spotify_id", id="missing-feature-column"),
    pytest.param(lambda f: _set(f, 17, "energy", "abc"), {},
                 r"tracks.csv: column 'energy' is numeric except 1 cell\(s\) that are not numbers \(e.g. row 17: 'abc'\)",
                 "data.table.feature_columns", id="stray-text-cell"),
    pytest.param(lambda f: _set(f, slice(None), "tempo", f["tempo"].map(lambda v: f"{v}".replace(".", ","))), {},
                 r"tracks.csv: column 'tempo' uses decimal commas \(400 cell\(s\), e.g. row 0: '138,008'\)",
                 'data.table.decimal: ","', id="decimal-commas"),
    pytest.param(lambda f: _set(f, [5, 9], "country", "   "), {},
                 r"tracks.csv: column 'country' has 2 empty label\(s\) \(first rows \[5, 9\]\)",
                 "whitespace-only labels count as empty", id="whitespace-labels"),
    pytest.param(lambda f: _set(f, [3, 7], "country", np.nan), {},
                 r"tracks.csv: column 'country' has 2 empty label\(s\) \(first rows \[3, 7\]\)",
                 "fill or drop those rows", id="missing-labels"),
    pytest.param(lambda f: _set(f, 4, "loudness", np.inf), {},
                 r"tracks.csv: feature column 'loudness' has 1 infinite value\(s\) \(e.g. row 4\)",
                 "Fix or empty those cells", id="inf-feature"),
    pytest.param(lambda f: f.assign(spotify_id="same-id"), {"id_column": "spotify_id"},
                 r"tracks.csv: column 'spotify_id' has duplicate ids \(e.g. 'same-id'\)", "Deduplicate",
                 id="duplicate-ids"),
    pytest.param(lambda f: f.assign(country="ZA"), {},
                 r"tracks.csv: only one class \('ZA'\) in column 'country' has at least 3 tracks",
                 "needs two or more", id="one-class"),
    pytest.param(lambda f: f, {"feature_columns": ["name"]},
                 r"tracks.csv: feature column 'name' is text, not numbers \(e.g. row 0: 'luther \(with sza\)'\)",
                 "Leave it out of data.table.feature_columns", id="text-feature-listed"),
    pytest.param(lambda f: _set(f, slice(0, 299), "energy", np.nan), {"feature_columns": FEATURES},
                 r"tracks.csv: 300 of 400 rows have empty feature cells \(column 'energy' alone has 300\)",
                 "leave such columns out", id="mostly-empty-feature"),
]


@pytest.mark.parametrize("change, kwargs, message, fix", TABLE_ERRORS)
def test_bad_table_is_a_clear_error(table_file, change, kwargs, message, fix):
    path = table_file(change)
    kwargs = {"label_column": "country", **kwargs}
    with pytest.raises(DataError, match=message) as err:
        load_unchanged(path, **kwargs)
    assert fix in one_line(err)


@pytest.mark.parametrize("content, message", [
    ("", "tracks.csv: the file is empty. Re-export or re-download it."),
    ("country,energy\n", "tracks.csv: the file has a header but no data rows."),
], ids=["empty-file", "header-only"])
def test_empty_tables(tmp_path, content, message):
    path = tmp_path / "tracks.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=re.escape(message)):
        load_unchanged(path, "country")


def test_latin1_table_names_its_encoding_then_loads_with_it():
    with pytest.raises(DataError, match=r"top50contry_5countries_latin1.csv: not valid utf-8 .*") as err:
        load_unchanged(LATIN1, "country")
    assert "data.table.encoding: latin-1" in one_line(err)
    table = load_unchanged(LATIN1, "country", encoding="latin-1")
    assert table.frame["label"].nunique() == 5
    assert "dropped 1 row(s) with empty feature cells" in table.notes["dropped_rows"]  # NaN: a note, not silence
    assert "title" in table.notes["skipped_columns"] and "top genre" in table.notes["skipped_columns"]


def test_extra_and_reordered_columns_give_the_same_table(table_file):
    reference = load_table(TOP50, "country", FEATURES)
    shuffled = table_file(lambda f: f[list(reversed(f.columns))].assign(comment="free text"), name="shuffled.csv")
    table = load_unchanged(shuffled, "country", FEATURES)
    np.testing.assert_array_equal(table.features, reference.features)
    auto = load_unchanged(shuffled, "country")
    assert "comment" in auto.notes["skipped_columns"] and "comment" not in auto.feature_names


def test_single_track_class_is_dropped_with_a_note(table_file):
    path = table_file(lambda f: _set(f, 0, "country", "Atlantis"))
    table = load_unchanged(path, "country", FEATURES)
    assert "Atlantis" not in table.classes() and len(table.frame) == 399
    note = table.notes["dropped_classes"]
    assert "dropped 1 class(es)" in note and "'Atlantis' (1)" in note and "train, validation and test" in note


def test_decimal_commas_load_once_declared(table_file):
    path = table_file(name="european.csv", sep=";", decimal=",")
    table = load_unchanged(path, "country", FEATURES, sep=";", decimal=",")
    np.testing.assert_allclose(table.features, load_table(TOP50, "country", FEATURES).features)


# --------------------------------------------------------------------------- splits
def test_too_few_artists_for_the_split(tmp_path):
    frame = load_table(TOP50, "country", FEATURES, group_column="artists").frame
    frame["group"] = np.where(np.arange(len(frame)) % 2 == 0, "artist A", "artist B")
    with pytest.raises(DataError, match=r"column 'group': cannot make the test split: 2 distinct artist group") as err:
        make_splits(frame, SplitParams(), seed=0)
    assert "drop data.table.group_column" in one_line(err)


def test_nothing_to_split():
    frame = load_table(TOP50, "country", FEATURES).frame.iloc[:0]
    with pytest.raises(DataError, match="no tracks to split: the dataset is empty after filtering"):
        make_splits(frame, SplitParams(), seed=0)


# --------------------------------------------------------------------------- params
PARAMS_ERRORS = [
    pytest.param("train:\n  epoch: 3\n", r"p.yaml: invalid parameters\n  - train.epoch: unknown key", "check spelling",
                 id="unknown-key"),
    pytest.param("seed: 1\ntrain:\n  epochs: [3\n", r"p.yaml: not valid YAML \(.* at line \d+, column \d+\)",
                 "Fix that line", id="yaml-syntax"),
    pytest.param("split: {train: 0.8, val: 0.1, test: 0.2}\n", r"split.train \+ split.val \+ split.test must be 1.0, got 1.100",
                 "must be 1.0", id="splits-not-summing-to-1"),
    pytest.param("run_name: ../x\n", r"  - run_name: must be a plain folder name inside runs_dir .* \(got '../x'\)",
                 "e.g. my_run", id="run-name-traversal"),
    pytest.param("", r"p.yaml: the params file is empty \(or only comments\)", "run_name: my_run", id="empty-params"),
    pytest.param("- fcnn\n- cnn\n", r"p.yaml: expected a mapping of keys .* found a list", "params/default.yaml",
                 id="params-not-a-mapping"),
    pytest.param("device: tpu\n", r"device: Input should be 'auto', 'cpu' or 'cuda' \(got 'tpu'\)", "device",
                 id="bad-value"),
    pytest.param("data:\n  table:\n    min_tracks_per_class: 0\n", r"data.table.min_tracks_per_class: .*greater than or equal to 1",
                 "min_tracks_per_class", id="bad-min-tracks"),
]


@pytest.mark.parametrize("text, message, fix", PARAMS_ERRORS)
def test_bad_params_file(tmp_path, text, message, fix):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    before = digest(path)
    with pytest.raises(ParamsError, match=message) as err:
        load_params(path)
    assert fix in str(err.value) and not ANSI.search(str(err.value))
    assert digest(path) == before and not (tmp_path / "runs").exists()


def test_run_name_traversal_from_the_command_line():
    with pytest.raises(ParamsError, match=r"run_name: must be a plain folder name inside runs_dir .* \(got '../x'\)"):
        load_params(REPO / "params" / "smoke.yaml", overrides={"run_name": "../x"})


def test_params_with_only_data_run_like_default(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("data:\n  source: uci\n")
    assert load_params(path).to_plain() == load_params(REPO / "params" / "default.yaml").to_plain()


# --------------------------------------------------------------------------- checkpoints
class Payload:
    """Creates a marker file when unpickled: proves a refused checkpoint never ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def tiny_checkpoint() -> dict:
    torch.manual_seed(0)
    config = {"in_features": 6, "n_classes": 3, "hidden": [5]}
    return {
        "format_version": 1, "model_name": "fcnn", "model_config": config,
        "state_dict": build_model("fcnn", config).state_dict(), "classes": ["France", "Japan", "Mali"],
        "class_lat": [46.6, 36.2, 17.6], "class_lon": [2.2, 138.3, -4.0],
        "class_region": ["Western Europe", "Eastern Asia", "Western Africa"],
        "feature_names": [f"f{i}" for i in range(6)], "view": "vector", "grid_shape": None,
        "norm_mean": [0.0] * 6, "norm_std": [1.0] * 6,
    }


@pytest.fixture
def model_dir(tmp_path):
    """A finished model folder: checkpoints, history and predictions, as the trainer leaves it."""
    folder = tmp_path / "runs" / "r" / "models" / "fcnn" / "fold_0"
    folder.mkdir(parents=True)
    torch.save(tiny_checkpoint(), folder / "checkpoint_best.pt")
    torch.save(tiny_checkpoint(), folder / "checkpoint_last.pt")
    (folder / "history.csv").write_text("epoch,train_loss\n1,0.5\n")
    return folder


@pytest.mark.parametrize("how", ["zip", "bare-pickle"])
def test_malicious_checkpoint_is_refused_and_never_runs(model_dir, tmp_path, how):
    marker = tmp_path / "PWNED"
    path = model_dir / "checkpoint_best.pt"
    if how == "zip":
        torch.save({**tiny_checkpoint(), "extra": Payload(marker)}, path)
    else:
        import pickle

        path.write_bytes(pickle.dumps({"x": Payload(marker)}))
    before = digest(model_dir)
    with pytest.raises(CheckpointError, match=re.escape(
            f"{path}: contains pickled Python objects and was refused for safety (geomusic checkpoints hold only "
            "tensors and plain values); re-create it with this version of geomusic")) as err:
        load_checkpoint(path)
    assert "weights_only" not in one_line(err)
    assert not marker.exists() and digest(model_dir) == before


@pytest.mark.parametrize("cut", [0, 100, "half"], ids=["empty", "first-100-bytes", "half"])
def test_truncated_best_checkpoint_names_the_folder_to_delete(model_dir, cut):
    path = model_dir / "checkpoint_best.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if cut == "half" else cut])
    before = digest(model_dir)
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: not a readable geomusic checkpoint, truncated or corrupt")) as err:
        load_checkpoint(path)
    assert f"delete the folder {model_dir} and rerun the same command" in one_line(err)
    assert digest(model_dir) == before


def test_foreign_file_is_not_a_checkpoint(tmp_path):
    torch.save({"hello": torch.zeros(1)}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match=r"x.pt: not a geomusic checkpoint \(missing keys \['format_version'"):
        load_checkpoint(tmp_path / "x.pt")
    (tmp_path / "notes.pt").write_text("hello")
    with pytest.raises(CheckpointError, match=r"notes.pt: .*\(not a PyTorch checkpoint file\); copy it again"):
        load_checkpoint(tmp_path / "notes.pt")


# --------------------------------------------------------------------------- predict (behaves well today)
@pytest.fixture
def predict_files(model_dir, tmp_path):
    """A checkpoint, a good input table and an earlier predictions file that must survive a failure."""
    rows = pd.DataFrame(np.random.default_rng(0).normal(size=(8, 6)), columns=[f"f{i}" for i in range(6)])
    rows.insert(0, "track_id", [f"t{i}" for i in range(8)])
    rows.to_csv(tmp_path / "good.csv", index=False)
    earlier = tmp_path / "earlier.csv"
    earlier.write_text("track_id,top1\nt0,Mali\n")
    return model_dir / "checkpoint_best.pt", rows, earlier


def run_predict(capsys, checkpoint: Path, data: Path, output: Path, *extra: str) -> tuple[int, str]:
    before = digest(data, output)
    code = predict_main(["--checkpoint", str(checkpoint), "--input", str(data), "--output", str(output), *extra])
    assert digest(data, output) == before or code == 0
    return code, capsys.readouterr().err


@pytest.mark.parametrize("make, message", [
    (lambda rows, p: np.save(p.with_suffix(".npy"), np.zeros((3, 68))) or p.with_suffix(".npy"),
     r"bad.npy: 68 features per track, but model 'fcnn' was trained on 6 \(f0, f1, f2, f3, f4, … \(6 in all\)\)"),
    (lambda rows, p: rows.drop(columns=["f2", "f4"]).to_csv(p, index=False) or p,
     r"2 feature column\(s\) .*f2.*f4"),
    (lambda rows, p: rows.iloc[:0].to_csv(p, index=False) or p, r"no rows"),
    (lambda rows, p: rows.assign(f3=[np.nan] + [0.0] * 7).to_csv(p, index=False) or p,
     r"1 NaN or infinite value\(s\) in 1 track\(s\) \(first: row 0, track t0\), in column\(s\) \['f3'\]"),
], ids=["uci-width-npy", "missing-columns", "header-only-csv", "nan-feature"])
def test_predict_cli_refuses_bad_input_without_touching_outputs(predict_files, tmp_path, capsys, make, message):
    checkpoint, rows, earlier = predict_files
    data = make(rows, tmp_path / "bad.csv")
    code, err = run_predict(capsys, checkpoint, data, earlier)
    assert code == 2 and err.startswith("error: ") and re.search(message, err), err
    assert "Traceback" not in err


def test_predict_matches_columns_by_name(predict_files, tmp_path):
    checkpoint, rows, _ = predict_files
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    reordered = rows[["track_id", "f5", "f3", "f1", "f0", "f2", "f4"]].assign(comment="ignored")
    pd.testing.assert_frame_equal(predictor.predict(reordered), predictor.predict(rows))


def test_predict_cli_refuses_a_malicious_checkpoint(predict_files, tmp_path, capsys):
    checkpoint, _, earlier = predict_files
    torch.save({**tiny_checkpoint(), "extra": Payload(tmp_path / "PWNED")}, checkpoint)
    code, err = run_predict(capsys, checkpoint, tmp_path / "good.csv", earlier)
    assert code == 2 and "refused for safety" in err and not (tmp_path / "PWNED").exists()


def test_predict_reports_a_missing_input_file(predict_files, tmp_path):
    with pytest.raises(PredictionError, match=r"nope.csv: input file not found"):
        Predictor.from_checkpoint(predict_files[0], device="cpu").predict(tmp_path / "nope.csv")


def test_predict_cli_never_writes_over_its_input(predict_files, tmp_path, capsys):
    checkpoint, _, _ = predict_files
    good = tmp_path / "good.csv"
    code, err = run_predict(capsys, checkpoint, good, good)
    assert code == 2 and "--output is the same file as an input" in err


@pytest.mark.parametrize("extra, message", [
    (["--batch-size", "0"], r"--batch-size must be at least 1, got 0"),
    (["--top-k", "0"], r"top_k must be at least 1"),
], ids=["batch-size-0", "top-k-0"])
def test_predict_cli_refuses_bad_options_in_one_line(predict_files, tmp_path, capsys, extra, message):
    checkpoint, _, earlier = predict_files
    code, err = run_predict(capsys, checkpoint, tmp_path / "good.csv", earlier, *extra)
    assert code == 2 and re.search(message, err) and "Traceback" not in err


def test_predict_cli_names_an_output_it_cannot_write(predict_files, tmp_path, capsys):
    checkpoint, _, _ = predict_files
    code, err = run_predict(capsys, checkpoint, tmp_path / "good.csv", tmp_path)  # a folder
    assert code == 2 and "--output is a folder" in err
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code, err = run_predict(capsys, checkpoint, tmp_path / "good.csv", blocker / "out.csv")  # parent is a file
    assert code == 2 and "cannot write there" in err


def test_predict_cli_reads_a_latin1_csv_with_encoding(predict_files, tmp_path, capsys):
    checkpoint, rows, earlier = predict_files
    latin = tmp_path / "latin.csv"
    rows.assign(track_id=[f"Café {i}" for i in range(8)]).to_csv(latin, index=False, encoding="latin-1")
    code, err = run_predict(capsys, checkpoint, latin, earlier)
    assert code == 2 and "not valid utf-8 text" in err and "--encoding latin-1" in err
    out = tmp_path / "latin_out.csv"
    assert predict_main(["--checkpoint", str(checkpoint), "--input", str(latin), "--output", str(out),
                         "--encoding", "latin-1"]) == 0
    assert pd.read_csv(out)["track_id"].tolist()[0] == "Café 0"


# --------------------------------------------------------------------------- features CLI
@pytest.fixture
def feature_run(tmp_path, monkeypatch):
    """Tracks with Spotify ids, an output folder with earlier results, and no credentials anywhere."""
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv("SPOTIPY_CLIENT_ID", raising=False)
    monkeypatch.delenv("SPOTIPY_CLIENT_SECRET", raising=False)
    tracks = pd.DataFrame({"track_id": ["a", "b", "c"], "track_sp_id": ["0" * 22, "1" * 22, "2" * 22]})
    tracks.to_csv(tmp_path / "tracks.csv", index=False)
    out = tmp_path / "out"
    out.mkdir()
    pd.DataFrame({"danceability": [0.1]}, index=pd.Index(["a"], name="track_id")).to_parquet(out / "features.parquet")
    (out / "coverage.json").write_text(json.dumps({"source": "spotify", "tracks": 1}))
    return tmp_path / "tracks.csv", out


def test_missing_spotify_credentials_fail_at_once(feature_run):
    tracks, out = feature_run
    before = digest(tracks, out)
    params = FeatureParams(source="spotify")
    params.spotify = params.spotify.model_copy(update={"api_base": "http://127.0.0.1:9", "max_tries": 6})
    start = time.monotonic()
    with pytest.raises(FeatureError, match=r"Spotify credentials not found: set SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET") as err:
        extract_features(pd.read_csv(tracks), params, out)
    assert time.monotonic() - start < 10  # no retries: six tries with back-off (base 1 s) take longer; generous for a busy CI
    assert ".env" in one_line(err)
    assert {p: h for p, h in digest(tracks, out).items() if p.name != "cache.sqlite"} == before


@pytest.mark.parametrize("change, args, message", [
    (None, ["--source", "spotify", "--api-base", "http://127.0.0.1:9"], r"Spotify credentials not found"),
    (lambda t: pd.concat([t, t.head(1)]), ["--source", "columns"],
     r"input tracks: column 'track_id' is not unique \(1 repeats, e.g. 'a'\)\. Deduplicate"),
    (lambda t: t.drop(columns="track_id"), ["--source", "columns"], r"input tracks: no 'track_id' column"),
    (None, ["--source", "spotify", "--batch-size", "0"], r"command line: --batch-size 0: .*greater than or equal to 1"),
    (None, ["--source", "spotify", "--timeout", "-1"], r"command line: --timeout -1.0: .*greater than 0"),
], ids=["cli-missing-credentials", "duplicate-track-ids", "missing-track-id", "batch-size-0", "negative-timeout"])
def test_features_cli_exits_2_with_one_line(feature_run, capsys, change, args, message):
    tracks, out = feature_run
    if change is not None:
        change(pd.read_csv(tracks)).to_csv(tracks, index=False)
    before = digest(tracks, out)
    code = features_main(["--input", str(tracks), "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2 and re.search(message, err), err
    assert {p: h for p, h in digest(tracks, out).items() if p.name != "cache.sqlite"} == before


def test_features_cli_as_a_process_has_no_traceback(feature_run):
    tracks, out = feature_run
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPOTIPY_")}
    done = subprocess.run([sys.executable, "-m", "geomusic_lib", "features", "--input", str(tracks), "--out", str(out),
                           "--source", "spotify", "--api-base", "http://127.0.0.1:9"],
                          cwd=tracks.parent, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "error: Spotify credentials not found" in done.stderr
    assert "Traceback" not in done.stderr and "retrying" not in done.stderr


# --------------------------------------------------------------------------- two runs on one run directory
def test_run_in_use_by_a_live_process_is_refused(tmp_path):
    run_dir = tmp_path / "runs" / "smoke"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; from geomusic_lib.core import RunLock\n"
         "with RunLock(sys.argv[1]):\n print('locked', flush=True); time.sleep(60)", str(run_dir)],
        cwd=REPO, env={k: v for k, v in os.environ.items() if k != ENV_VAR}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        (run_dir / "manifest.json").write_text("{}")
        before = digest(run_dir)
        with pytest.raises(RunLockError, match=rf"run 'smoke' is in use by pid {holder.pid} \(started .+\)") as err:
            RunLock(run_dir).acquire()
        assert "another run_name" in one_line(err) and digest(run_dir) == before
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_is_taken_over_with_a_note(tmp_path):
    run_dir = tmp_path / "runs" / "smoke"
    run_dir.mkdir(parents=True)
    (run_dir / LOCK_FILE).write_text(json.dumps({"pid": 2 ** 22 + 7, "started": "2025-01-01T10:00:00+00:00"}))
    with RunLock(run_dir) as lock:
        pass
    assert lock.note == (f"{run_dir / LOCK_FILE}: took over the lock of run 'smoke' left by pid {2 ** 22 + 7} "
                         "(started 2025-01-01T10:00:00+00:00), which is no longer running.")


def test_temporary_files_have_unique_names(tmp_path):
    """Unique temporary names: a second writer never renames the first one's half-written file."""
    from geomusic_lib.core import atomic_path

    target = tmp_path / "data" / "splits.json"
    with atomic_path(target) as first, atomic_path(target) as second:
        assert first != second and first.parent == second.parent == target.parent
        first.write_text("first")
        second.write_text("second")
    assert target.read_text() == "first" and sorted(p.name for p in target.parent.iterdir()) == ["splits.json"]


def test_params_validate_before_anything_is_written(tmp_path):
    with pytest.raises(ParamsError, match=r"unknown key"):
        params_from_dict({"runs_dir": str(tmp_path / "runs"), "data": {"tabel": {}}})
    assert not (tmp_path / "runs").exists()
