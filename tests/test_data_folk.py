"""The `folk` source and the `notes` features, against the Essen corpus inside the installed music21.

A few small real files of the corpus are parsed at test time (into a temporary cache); no tune
is copied into the repository. Without music21 the corpus tests skip, with the reason.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geomusic_lib.data import china_provinces, clean_beat_strength, origin_country, origin_province, tonic_pitch_class
from geomusic_lib.data import great_circle_km

#: Four small files of the corpus: 52 tunes from Germany, China, Mexico, the USA, Hungary, Ireland, ...
SUBSET = ["test0", "test1", "testd", "teste"]


@pytest.fixture(scope="module")
def music21():
    return pytest.importorskip("music21", reason="the folk source reads the Essen corpus inside music21: "
                                                 "pip install -e '.[folk]'")


@pytest.fixture(scope="module")
def folk_params(music21, tmp_path_factory):
    from geomusic_lib.core import FolkParams

    return FolkParams(files=SUBSET, cache_dir=tmp_path_factory.mktemp("folk_cache"), workers=1,
                      min_tracks_per_class=3)


@pytest.fixture(scope="module")
def folk_table(folk_params):
    from geomusic_lib.data import load_folk_tracks

    return load_folk_tracks(folk_params, progress=False)


# --------------------------------------------------------------------------- labels (no music21 needed)
@pytest.mark.parametrize("origin, country", [
    ("Europa, Mitteleuropa, Deutschland", "Germany"),
    ("Mitteleuropa, Deutschland (DDR) , Brandenburg", "Germany"),
    ("Mitteleuropa, Deutschland (BRD) , Hessen, Nassau", "Germany"),
    ("Europa, Mitteleuropa, Deutschland, Thueringen; Sachsen", "Germany"),
    ("Lothringen", "France"),
    ("Europa, Mitteleuropa, Lothringen, Weiler", "France"),
    ("Luxemburg", "Luxembourg"),
    ("Europa, Mitteleuropa, Italien, Tirol, Meran", "Italy"),
    ("Europa, Mitteleuropa, Tirol", "Austria"),
    ("Osteuropa, UdSSR, Ukraine", "Ukraine"),
    ("Suedosteuropa, Jugoslawien, Gottschee", "Slovenia"),
    ("Asien, Ostasien, China, Sha1nxi1", "China"),
])
def test_german_origin_names_map_to_modern_countries(origin, country):
    assert origin_country(origin) == (country, None)


@pytest.mark.parametrize("origin, reason", [
    ("Mitteleuropa, Deutschland / Frankreich, Lothringen", "ambiguous"),
    ("Europa, Mitteleuropa, Deutschland; Frankreich, Elsass", "ambiguous"),
    ("Mitteleuropa, Deutschland / UdSSR, Ostpreussen", "ambiguous"),
    ("Osteuropa, UdSSR, Bessarabien", "historical"),
    ("Suedosteuropa, Jugoslawien", "historical"),
    ("Mitteleuropa", "no_country"),
    ("", "no_origin"),
])
def test_ambiguous_historical_and_vague_origins_are_left_out_with_a_reason(origin, reason):
    assert origin_country(origin) == (None, reason)


@pytest.mark.parametrize("origin, expected", [
    ("China, Shanxi Zuoquan", ("Shanxi", None)),
    ("China, Shaanxi, Zizhou", ("Shaanxi", None)),
    ("Asien, Ostasien, China, Sha1nxi1", ("Shanxi", None)),  # tone numbers: Shānxī is Shanxi
    ("China, bei Liaoning, Haicheng", ("Liaoning", None)),
    ("China, Sichuan, Chongqing", ("Sichuan", None)),
    ("China, Dongbei, Nordosten", (None, "no_province")),
    ("Luxemburg", (None, "not_china")),
    ("Mitteleuropa, Deutschland / Frankreich, Lothringen", (None, "ambiguous")),
])
def test_chinese_origins_map_to_provinces(origin, expected):
    assert origin_province(origin) == expected


def test_province_capitals_are_in_china_and_km_apart():
    table = china_provinces().set_index("province")
    assert table["lat"].between(18, 54).all() and table["lon"].between(73, 135).all()
    assert table.index.is_unique and len(table) == 32
    km = great_circle_km(table.at["Shanxi", "lat"], table.at["Shanxi", "lon"],
                         table.at["Shaanxi", "lat"], table.at["Shaanxi", "lon"])
    assert 400 < km < 600  # Taiyuan – Xi'an


def test_nan_beat_strengths_are_cleaned():
    cleaned = clean_beat_strength(np.array([np.nan, 0.5, np.nan]), np.array([0.0, 1.0, 1.5]))
    assert cleaned.tolist() == [1.0, 0.5, 0.25]


@pytest.mark.parametrize("key, pc", [("G", 7), ("Bb", 10), ("F#", 6), ("Es", 3), ("H", 11), ("Dm", 2)])
def test_abc_tonics(key, pc):
    assert tonic_pitch_class(key) == pc


# --------------------------------------------------------------------------- the corpus subset
def test_labels_and_exclusions_add_up(folk_table):
    notes, frame = folk_table.notes["report"], folk_table.frame
    assert notes["tunes_read"] == 52
    assert notes["tunes_labelled"] == len(frame) == notes["tunes_read"] - sum(notes["excluded"].values())
    assert notes["excluded"]["no_country"] > 0 and notes["excluded"]["small_class"] > 0
    assert set(frame["label"]) == {"Germany", "China", "Mexico", "United States", "Hungary"}
    assert frame["track_id"].is_unique and frame["lat"].notna().all()
    china = frame[frame["label"] == "China"].iloc[0]
    assert (china["lat"], china["lon"]) == pytest.approx((39.9075, 116.3972), abs=1e-3)  # Beijing
    assert set(frame["source_file"]) <= set(SUBSET)


def test_title_variants_share_a_group_and_no_group_straddles_train_and_test(folk_table):
    from geomusic_lib.data import normalise_title
    from geomusic_lib.data import make_splits
    from geomusic_lib.core import SplitParams

    frame = folk_table.frame
    titles = frame["title"].map(normalise_title)
    assert (frame.groupby(titles)["group"].nunique() == 1).all()
    assert folk_table.notes["report"]["groups"] == frame["group"].nunique() < len(frame)
    for split in make_splits(frame, SplitParams(strategy="kfold", folds=3), seed=0):
        groups = {part: set(frame["group"].iloc[getattr(split, part)]) for part in ("train", "val", "test")}
        assert not groups["train"] & groups["test"] and not groups["val"] & groups["test"]


def test_cached_load_parses_nothing_and_a_lost_file_is_parsed_alone(folk_params, folk_table):
    from geomusic_lib.data import cache_path, essen_dir, essen_files, load_folk_tracks

    again = load_folk_tracks(folk_params, progress=False)
    assert again.notes["report"]["parse"]["parsed_files"] == 0
    pd.testing.assert_frame_equal(again.frame, folk_table.frame)
    lost = cache_path(essen_files(essen_dir(), ["testd"])[0], Path(folk_params.cache_dir))
    lost.unlink()  # as if the parse had been killed before this file was written
    resumed = load_folk_tracks(folk_params, progress=False)
    assert resumed.notes["report"]["parse"]["parsed_files"] == 1 and resumed.notes["report"]["parse"]["parsed_tunes"] == 8
    assert lost.is_file() and not list(lost.parent.glob("*.tmp"))
    pd.testing.assert_frame_equal(resumed.frame, folk_table.frame)


def test_skipping_beams_keeps_the_same_note_events(music21):
    from music21 import converter

    from geomusic_lib.data.folk import EVENT_COLUMNS, _tune_events, essen_dir, essen_files, parse_abc_events

    path = essen_files(essen_dir(), ["testd"])[0]
    fast = parse_abc_events(path)
    opus = converter.parseFile(path, format="abc", forceSource=True, storePickle=False)  # with beams
    slow = [e for s in opus.scores for e in _tune_events(s)]
    np.testing.assert_array_equal(fast[EVENT_COLUMNS[1:]].to_numpy(), np.asarray(slow, dtype=np.float32))


def test_note_frames_and_global_features_are_finite_and_transposition_free(folk_table):
    from geomusic_lib.features import FRAME_CHANNELS, MAX_FRAMES, notes_features

    features, frames = notes_features(folk_table.frame, progress=False)
    assert list(features.index) == list(folk_table.frame["track_id"])
    assert np.isfinite(features.to_numpy()).all() and features.shape[1] > 40
    for track_id, midi in zip(folk_table.frame["track_id"], folk_table.frame["notes_midi"]):
        assert frames[track_id].shape == (min(len(midi), MAX_FRAMES), len(FRAME_CHANNELS))
        assert frames[track_id].dtype == np.float32
        assert np.isfinite(frames[track_id]).all()
        assert (frames[track_id][:, FRAME_CHANNELS.index("is_rest")] == ~np.isfinite(midi[:MAX_FRAMES])).all()
    shifted = folk_table.frame.assign(notes_midi=folk_table.frame["notes_midi"].map(lambda m: m + 5),
                                      tonic_pc=(folk_table.frame["tonic_pc"] + 5) % 12)
    features2, frames2 = notes_features(shifted, progress=False)
    pd.testing.assert_frame_equal(features2, features)
    assert all(np.allclose(frames2[t], frames[t]) for t in frames)


def test_run_pipeline_trains_a_sequence_model_on_note_frames(folk_params, tmp_path):
    from geomusic_lib.data import load_run_data
    from geomusic_lib.data import frames_for_tracks
    from geomusic_lib.data import pad_frames
    from geomusic_lib.core import RunDir
    from geomusic_lib.pipeline import extract_features, prepare_data
    from geomusic_lib.core import params_from_dict
    from geomusic_lib.training import train_model

    params = params_from_dict({
        "run_name": "folk_test", "runs_dir": str(tmp_path), "device": "cpu",
        "data": {"source": "folk", "folk": folk_params.model_dump(mode="json")},
        "features": {"source": "notes"}, "model": {"attention": {"hidden": 8, "view": "frames"}},
        "train": {"epochs": 2, "batch_size": 16},
    })
    run = RunDir(params.run_dir)
    prepare_data(params, run)
    summary = extract_features(params, run)
    assert summary["extracted"] and summary["with_features"] == summary["tracks"]
    data = load_run_data(run)
    frames = frames_for_tracks(data.table.frame["track_id"], run.features_dir)
    batch = pad_frames(frames)
    assert batch.mask.sum(1).tolist() == [len(f) for f in frames]
    result = train_model("attention", data.table, data.splits, params, run.model_dir("attention"), frames=frames,
                         progress=False)
    assert result.predictions.is_file() and np.isfinite(result.test_accuracy)
    from geomusic_lib.evaluation import melody_showcase
    from geomusic_lib.predict import Predictor

    predictor = Predictor.from_checkpoint(run.checkpoint("attention"), device="cpu")
    val = data.table.frame.iloc[data.splits[0].val]
    right = predictor.predict(predictor.track_inputs(val, run.features_dir), top_k=1)["top1"] == val["label"].to_numpy()
    for method in ("attention", "integrated_gradients"):  # what notebook 08 draws, on validation tunes only
        shown = melody_showcase(run, data, data.splits[0], "attention", method, device="cpu", steps=4)
        assert (shown is None) == (not right.any())  # nothing to show only when no validation tune is right
        if shown is None:
            continue
        val_ids = set(val["track_id"])
        assert all(t.split(":")[0] for t in shown.titles) and len(shown.melodies) == len(shown.weights)
        assert all(len(m) <= 48 and len(w) <= 48 for m, w in zip(shown.melodies, shown.weights))
        assert shown.track_ids and set(shown.track_ids) <= val_ids


def test_unknown_files_and_missing_corpus_name_the_key(music21, tmp_path):
    from geomusic_lib.data import FolkError, essen_dir, essen_files

    with pytest.raises(FolkError, match="data.folk.files: \\['nope'\\]"):
        essen_files(essen_dir(), ["nope"])
    with pytest.raises(FolkError, match="data.folk.corpus_dir"):
        essen_dir(tmp_path)


def test_titles_in_dos_code_page_are_repaired_and_real_text_is_kept():
    from geomusic_lib.data import repair_dos_letters

    assert repair_dos_letters("Sch\x94nes Himmelreich") == "Schönes Himmelreich"
    assert repair_dos_letters("Schönes Himmelreich, Zhe cha") == "Schönes Himmelreich, Zhe cha"


def test_the_folk_page_counts_the_corpus_this_run_read(folk_table, tmp_path):
    """book/folk.md's counts are the loader's report of the files it read, not typed numbers."""
    from types import SimpleNamespace

    from geomusic_lib.book.facts import folk_counts_markdown
    from geomusic_lib.core import RunDir

    assert folk_table.source == "folk"
    report = folk_table.notes["report"]
    text = folk_counts_markdown(RunDir(tmp_path / "runs" / "folk"), SimpleNamespace(table=folk_table))
    assert f"**{report['tunes_read']:,} tunes** in {len(SUBSET)} files" in text
    assert f"**{report['tunes_labelled']:,} tunes in {len(report['classes'])} classes**" in text
    assert f"{report['groups']:,} variant groups" in text
