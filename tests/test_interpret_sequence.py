"""Per-note attention and integrated gradients of sequence models trained by the real trainer on
a few real Essen tunes (parsed from the installed music21 at test time), and the melody figure."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from geomusic_lib.evaluation import interpret_sequence as iseq
from geomusic_lib.plots import melody_weight_figure, pitch_name

SUBSET = ["test0", "test1", "testd", "teste"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Integrated gradients and the predictions on one torch thread, as the trainer already trains
    these small models (`train.threads: auto`): `make test` runs two workers on two cores, and there
    the LSTM's backward passes on torch's default two OpenMP threads ran 10-30 times slower."""
    from geomusic_lib.core.threads import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pytest.importorskip("music21", reason="the folk source reads the Essen corpus inside music21: "
                                          "pip install -e '.[folk]'")
    from geomusic_lib.data import TrackTable, make_splits
    from geomusic_lib.data import load_folk_tracks
    from geomusic_lib.features import notes_features
    from geomusic_lib.core import FolkParams, params_from_dict
    from geomusic_lib.predict import Predictor
    from geomusic_lib.training import train_model

    folk = FolkParams(files=SUBSET, cache_dir=tmp_path_factory.getbasetemp() / "folk_cache", workers=1,
                      min_tracks_per_class=3)
    tracks = load_folk_tracks(folk, progress=False).frame
    feats, frames = notes_features(tracks, progress=False)
    table = TrackTable(tracks[["track_id", "label", "group", "lat", "lon"]].join(feats, on="track_id"),
                       list(feats.columns), "folk")
    params = params_from_dict({"device": "cpu", "split": {"strategy": "holdout"},
                               "model": {m: {"hidden": 8, "view": "frames"} for m in ("rnn", "attention")},
                               "train": {"epochs": 3, "batch_size": 16}})
    splits = make_splits(table.frame, params.split, seed=0)
    out = tmp_path_factory.mktemp("models")
    seq = [frames[t] for t in table.frame["track_id"]]
    predictors = {}
    for name in ("attention", "rnn"):
        train_model(name, table, splits, params, out / name, frames=seq, progress=False)
        predictors[name] = Predictor.from_checkpoint(out / name / "checkpoint_best.pt", device="cpu")
    return predictors, tracks, seq, splits[0], table


def test_integrated_gradients_add_up_to_the_change_in_probability(trained):
    """Completeness: each row's attributions sum to p(target | x) - p(target | zero input). After three
    epochs that change is about 0.05, so the tolerance is 0.005 (a tenth of it); on this smooth, briefly
    trained model the midpoint rule with the default 32 steps is within 1e-4."""
    predictors, _, seq, split, _ = trained
    rnn = predictors["rnn"]
    batch = rnn.prepare([seq[i] for i in split.test[:6]])
    target = rnn.predict_proba(batch).argmax(1)
    attributions = iseq.integrated_gradients(rnn.model, batch.x, batch.mask, target, steps=32)
    with torch.no_grad():
        p_x = torch.softmax(rnn.model(batch.x, batch.mask), 1)[np.arange(len(target)), target]
        p_0 = torch.softmax(rnn.model(torch.zeros_like(batch.x), batch.mask), 1)[np.arange(len(target)), target]
    change = (p_x - p_0).numpy()
    assert np.abs(change).max() > 0.02  # a change the tolerance can tell from zero attributions
    np.testing.assert_allclose(attributions.sum(axis=(1, 2)), change, atol=0.005)
    assert (attributions[~batch.mask.numpy()] == 0).all()  # padding gets nothing


def test_attention_weights_per_note_sum_to_one_over_real_notes(trained):
    predictors, _, seq, split, _ = trained
    attention = predictors["attention"]
    batch = attention.prepare([seq[i] for i in split.test[:6]])
    weights = iseq.note_weights(attention.model, batch.x, batch.mask, [0] * 6, method="attention")
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-5)
    assert (weights[~batch.mask.numpy()] == 0).all()
    with pytest.raises(ValueError, match="method must be"):
        iseq.note_weights(attention.model, batch.x, batch.mask, [0] * 6, method="shap")


def test_showcase_rows_are_correct_confident_validation_rows_of_several_classes():
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3]])
    shown = iseq.showcase_rows(proba, np.array([0, 0, 1, 1]), ["A", "B"], rows=[10, 11, 12, 13], n_classes=2)
    assert shown.to_dict("records") == [{"row": 10, "class": "A", "probability": 0.9},
                                        {"row": 12, "class": "B", "probability": 0.8}]


def test_melody_figure_colours_each_sounding_note_by_its_step_weight(trained):
    predictors, tracks, seq, split, table = trained
    attention = predictors["attention"]
    rows = split.val if len(split.val) else split.test
    proba = attention.predict_proba([seq[i] for i in rows])
    shown = iseq.showcase_rows(proba, table.label_indices()[rows], attention.classes, rows, n_classes=2)
    if shown.empty:  # three epochs on a few tunes: the model may get no validation tune right
        shown = pd.DataFrame({"row": rows[:1], "class": ["?"], "probability": [0.0]})
    melodies = [iseq.melody_notes(tracks.iloc[r], max_notes=40) for r in shown["row"]]
    batch = attention.prepare([seq[r] for r in shown["row"]])
    weights = iseq.note_weights(attention.model, batch.x, batch.mask, [0] * len(shown))
    fig = melody_weight_figure(melodies, [w[:40] for w in weights], titles=list(shown["class"]))
    assert len(fig.data) == len(shown)
    first = melodies[0][~melodies[0]["is_rest"]]
    np.testing.assert_allclose(fig.data[0].marker.color, weights[0][first["step"].to_numpy()])
    assert list(fig.data[0].base) == first["onset"].tolist()
    assert pitch_name(60) == "C4" and pitch_name(70) == "Bb4"


def test_melody_notes_need_the_tracks_table():
    with pytest.raises(KeyError, match="tracks.parquet"):
        iseq.melody_notes(pd.Series({"track_id": "x", "f1": 1.0}))
