"""The `ngram` event-model baseline (after Hillewaere, Manderick & Conklin 2009): viewpoints that a
transposition leaves alone, n-grams that hear note order where counts cannot, and its place among the
baselines (files for the ensemble, a clear error without melodies, checked settings)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from geomusic_lib.core import params_from_dict, RunDir
from geomusic_lib.core.params import NGRAM_VIEWPOINTS, ParamsError
from geomusic_lib.data import Split, TrackTable
from geomusic_lib.data.viewpoints import melody_viewpoints, tune_viewpoints
from geomusic_lib.predict import read_predictions
from geomusic_lib.training import run_baselines
from geomusic_lib.training.baselines import fit_baseline, make_baseline
from geomusic_lib.training.ngram import run_melodies

SCALE = np.array([0, 2, 4, 5, 7, 9, 11, 12])


def toy_tune(rng: np.random.Generator, rising: bool, tonic: int = 2) -> dict:
    """24 notes drawn from a major scale, in runs of four that rise (or fall): the two classes share
    the distribution of note multisets and of durations, only the order differs."""
    pitches = 60 + tonic + rng.choice(SCALE, size=24)
    runs = [sorted(run, reverse=not rising) for run in pitches.reshape(6, 4)]
    midi = np.concatenate(runs).astype(np.float32)
    duration = rng.choice([0.5, 1.0, 1.5], size=24).astype(np.float32)
    onset = np.concatenate([[0.0], np.cumsum(duration)[:-1]]).astype(np.float32)
    beat = np.where(onset % 2 == 0, 1.0, 0.25).astype(np.float32)
    return {"notes_midi": midi, "notes_duration": duration, "notes_beat_strength": beat,
            "notes_onset": onset, "tonic_pc": float(tonic)}


def toy_table(n: int = 100, seed: int = 0) -> TrackTable:
    rng = np.random.default_rng(seed)
    labels = np.array(["falling", "rising"])[np.arange(n) % 2]
    tunes = pd.DataFrame([toy_tune(rng, label == "rising") for label in labels])
    counts = np.stack([np.bincount((m.astype(int) - 62) % 12, minlength=12) for m in tunes["notes_midi"]])
    frame = pd.DataFrame({"track_id": [f"t{i}" for i in range(n)], "label": labels, "group": pd.NA,
                          "lat": np.where(labels == "rising", 50.0, 30.0), "lon": 10.0})
    frame = pd.concat([frame, pd.DataFrame(counts, columns=[f"pc_{i}" for i in range(12)]), tunes], axis=1)
    return TrackTable(frame, [f"pc_{i}" for i in range(12)], "folk")


def test_viewpoints_of_a_tune_and_its_transposition_are_equal():
    rng = np.random.default_rng(3)
    midi = (60 + rng.integers(-7, 8, size=40)).astype(np.float32)
    midi[[5, 17]] = np.nan  # rests
    duration = rng.choice([0.25, 0.5, 1.0, 1.5, 1 / 3], size=40).astype(np.float32)
    beat = rng.choice([1.0, 0.5, 0.25, np.nan], size=40).astype(np.float32)
    tune = tune_viewpoints(midi, duration, beat, tonic_pc=7.0)
    moved = tune_viewpoints(midi + 5, duration, beat, tonic_pc=0.0)  # G → C, a fourth up
    assert set(tune) == set(NGRAM_VIEWPOINTS)
    for viewpoint in NGRAM_VIEWPOINTS:
        assert tune[viewpoint] == moved[viewpoint], viewpoint
        assert len(tune[viewpoint]) == 38  # one symbol per sounding note
    slower = tune_viewpoints(midi, duration * 2, beat, tonic_pc=7.0)  # a tempo change, too
    for viewpoint in ("interval", "contour", "degree", "duration_ratio", "metric"):
        assert tune[viewpoint] == slower[viewpoint], viewpoint
    assert tune["duration"] != slower["duration"] and "1/3" in tune["duration"]


def test_ngrams_learn_note_order_that_note_counts_cannot():
    table = toy_table(160)
    y, train, test = table.label_indices(), np.arange(100), np.arange(100, 160)
    docs = np.empty(len(y), dtype=object)
    docs[:] = melody_viewpoints(table.frame)
    ngram = fit_baseline("ngram", 0, docs[train], y[train], {"viewpoints": ["degree"], "orders": [2, 3]})
    assert (ngram.predict(docs[test]) == y[test]).mean() >= 0.9
    counts = LogisticRegression(max_iter=2000).fit(table.features[train], y[train])
    assert (counts.predict(table.features[test]) == y[test]).mean() <= 0.7


@pytest.mark.parametrize("bagging", [1, 2])
def test_run_baselines_writes_ngram_predictions_and_held_out_rows(tmp_path, bagging):
    table = toy_table(60)
    rows = np.arange(60)
    split = Split(-1, rows[:36], rows[36:45], rows[45:])
    params = params_from_dict({"train": {"class_weights": True, "bagging": {"folds": bagging}},
                               "baseline_settings": {"ngram": {"orders": [1, 2]}}})
    written = run_baselines(table, [split], params, tmp_path, names=["ngram", "logreg"], progress=False)
    for name in ("ngram", "logreg"):
        for path in (written[name], tmp_path / name / "oof.parquet"):
            pred = read_predictions(path)
            np.testing.assert_allclose(pred.proba.sum(1), 1.0, rtol=1e-6)
    assert len(read_predictions(written["ngram"]).track_ids) == 15
    assert len(read_predictions(tmp_path / "ngram" / "oof.parquet").track_ids) == (9 if bagging == 1 else 45)


def test_a_run_table_of_features_reads_the_melodies_from_the_runs_tracks(tmp_path):
    table = toy_table(40)
    run = RunDir(tmp_path / "run")
    run.tracks.parent.mkdir(parents=True)
    table.frame.to_parquet(run.tracks, index=False)
    features_only = TrackTable(table.frame.drop(columns=[c for c in table.frame if c.startswith("notes_")]),
                               table.feature_names, "folk")
    split = Split(-1, np.arange(30), np.arange(30, 34), np.arange(34, 40))
    written = run_baselines(features_only, [split], params_from_dict({}), run.models_dir, names=["ngram"],
                            progress=False, melodies=run_melodies(run))
    assert len(read_predictions(written["ngram"]).track_ids) == 6


def test_ngram_without_melodies_fails_in_one_line_naming_baselines(tmp_path):
    table = toy_table(20)
    plain = TrackTable(table.frame[["track_id", "label", "group", "lat", "lon", *table.feature_names]],
                       table.feature_names, "uci")
    split = Split(-1, np.arange(14), np.arange(14, 16), np.arange(16, 20))
    with pytest.raises(ValueError) as err:
        run_baselines(plain, [split], params_from_dict({}), tmp_path, names=["logreg", "ngram"], progress=False)
    assert str(err.value) == "baselines: ngram needs melodies (data.source: folk); remove it from baselines"
    assert not (tmp_path / "logreg").exists()  # nothing fitted before the error


def test_ngram_settings_are_checked_when_the_params_load():
    with pytest.raises(ParamsError) as err:
        params_from_dict({"baselines": ["ngram"], "baseline_settings": {"ngram": {"viewpoints": ["interval", "pitch"]}}})
    line = [ln for ln in str(err.value).splitlines() if "baseline_settings" in ln]
    assert len(line) == 1 and "baseline_settings.ngram.viewpoints" in line[0] and "'pitch'" in line[0]
    assert all(v in line[0] for v in NGRAM_VIEWPOINTS)
    with pytest.raises(ParamsError, match="baseline_settings.ngram.orders"):
        params_from_dict({"baseline_settings": {"ngram": {"orders": [0, 2]}}})
    params = params_from_dict({"baselines": ["ngram"], "train": {"class_weights": True},
                               "baseline_settings": {"ngram": {"viewpoints": ["interval*duration"], "C": 1.0}}})
    estimator = make_baseline("ngram", 0, params.baseline_settings_for("ngram"))
    assert estimator.get_params()["class_weight"] == "balanced" and estimator.C == 1.0


def test_a_tune_step_by_step_lines_up_its_notes_symbols_and_tokens():
    """01's table of one tune: a row per step, rests blank in the viewpoint columns, tokens as the frames'."""
    from geomusic_lib.data.note_tokens import note_tokens
    from geomusic_lib.data.viewpoints import pitch_name, tune_ngram_counts, tune_steps

    tune = pd.Series(toy_tune(np.random.default_rng(3), rising=True))
    tune.at["notes_midi"] = tune["notes_midi"].copy()
    tune["notes_midi"][5] = np.nan  # a rest
    steps = tune_steps(tune)
    assert len(steps) == 24 and steps.loc[5, "note"] == "rest" and steps.loc[5, "interval"] == ""
    symbols = tune_viewpoints(tune["notes_midi"], tune["notes_duration"], tune["notes_beat_strength"], 2.0)
    assert steps.loc[steps["note"] != "rest", "degree"].tolist() == symbols["degree"]
    codes = note_tokens(tune["notes_midi"], tune["notes_duration"], tune["notes_beat_strength"], 2.0)
    assert (steps[[c for c in steps if c.startswith("tok_")]].to_numpy() == codes).all()
    assert steps.loc[0, "note"] == pitch_name(tune["notes_midi"][0]) and pitch_name(61) == "C#4"
    counts = tune_ngram_counts(tune, ["interval", "degree*duration"], [1, 3])
    assert counts["n-grams"].tolist() == [23, 21, 23, 21]  # 23 sounding notes: 23 − n + 1 n-grams each
    assert (counts["distinct"] <= counts["n-grams"]).all() and counts["most frequent"].str.contains("×").all()


def test_the_typical_tune_has_the_median_length():
    from geomusic_lib.data.viewpoints import typical_tune

    frame = pd.DataFrame({"notes_midi": [np.full(k, 60.0) for k in (5, 40, 12, 13, 100)]})
    assert typical_tune(frame, [0, 1, 2, 3, 4]) == 3 and typical_tune(frame, [0, 2, 4]) == 2


def test_the_data_page_reads_a_melody_table_and_skips_a_table_without_melodies():
    """01's tune section: a view of the typical training tune with the run's n-gram settings; None on UCI."""
    from geomusic_lib.data import load_uci, typical_tune_view
    from geomusic_lib.plots import tune_figure

    tune = toy_tune(np.random.default_rng(3), rising=True) | {"track_id": "t0", "label": "China", "tonic_pc": 2}
    frame = pd.DataFrame([tune])
    view = typical_tune_view(frame, [0], {"viewpoints": ["contour"], "orders": [2]})
    assert view.ngrams["viewpoint"].tolist() == ["contour"] and view.ngrams["n"].tolist() == [2]
    assert view.caption.startswith("tune t0 (class China): 24 steps, 24 sounding notes")
    assert len(tune_figure(view).data[0].x) == 24  # one bar per sounding note
    with pytest.raises(ValueError, match="viewpoint"):
        typical_tune_view(frame, [0], {"viewpoints": ["pitch"]})
    assert typical_tune_view(load_uci().frame, [0, 1], {}) is None
