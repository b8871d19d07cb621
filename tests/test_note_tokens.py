"""Viewpoint tokens: transposition-invariant codes per note, and the sequence networks that embed them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from geomusic_lib.core import params_from_dict
from geomusic_lib.data.note_tokens import NOTE_TOKENS, note_tokens, TOKEN_CHANNELS
from geomusic_lib.data.views import Normalizer
from geomusic_lib.features.notes import FRAME_CHANNELS, note_frames
from geomusic_lib.models import build_model
from geomusic_lib.training.setup import model_config

MIDI = np.array([62, 64, np.nan, 66, 67, 69, 69, 62, 74, 50.0])
DURATION = np.array([1, 0.5, 0.5, 1, 2, 0.25, 0.25, 4, 1, 1.5])
BEAT = np.array([1, 0.5, 0.25, 1, 0.5, 0.125, np.nan, 1, 0.0625, 0.5])


def melody(shift: float) -> dict[str, np.ndarray]:
    onset = np.concatenate([[0.0], np.cumsum(DURATION)[:-1]])
    return {"midi": MIDI + shift, "duration": DURATION, "beat_strength": BEAT, "onset": onset,
            "bar_offset": onset % 4, "bar_length": np.full(len(MIDI), 4.0)}


@pytest.mark.parametrize("shift", [1, 5, -7, 12])
def test_a_transposed_tune_has_the_same_tokens(shift):
    tonic = 2.0  # D major
    plain = note_tokens(MIDI, DURATION, BEAT, tonic)
    moved = note_tokens(MIDI + shift, DURATION, BEAT, (tonic + shift) % 12)
    assert (plain == moved).all()
    frames, moved_frames = note_frames(melody(0), tonic), note_frames(melody(shift), (tonic + shift) % 12)
    tokens = [FRAME_CHANNELS.index(c) for c in TOKEN_CHANNELS]
    assert FRAME_CHANNELS[-len(TOKEN_CHANNELS):] == TOKEN_CHANNELS
    assert (frames[:, tokens] == moved_frames[:, tokens]).all() and (frames[:, tokens] == plain).all()


def test_tokens_read_what_each_viewpoint_means():
    codes = dict(zip(NOTE_TOKENS, note_tokens(MIDI, DURATION, BEAT, 2.0).T))
    assert (codes["interval"][:4] == [1, 2 + 14, 0, 2 + 14]).all()  # first note, +2, rest, +2 across the rest
    assert codes["interval"][9] == -12 + 14  # a leap of −24 is clipped to an octave
    assert (codes["degree"][[0, 1, 2]] == [1, 3, 0]).all()  # tonic, second degree, rest
    assert (codes["contour"][[1, 6, 7]] == [3, 2, 1]).all()  # up, repeat, down
    assert (codes["duration_ratio"][[1, 4]] == [-1 + 4, 1 + 4]).all()  # half as long, twice as long
    assert (codes["metric"][[0, 1, 6, 8]] == [1, 2, 0, 5]).all()  # downbeat, half, unknown, 1/16
    assert all((codes[v] >= 0).all() and (codes[v] < size).all() for v, size in NOTE_TOKENS.items())


def test_token_channels_are_left_unscaled():
    frames = [note_frames(melody(0), 2.0), note_frames(melody(3), 5.0)]
    norm = Normalizer.fit(frames, unscaled_last=len(TOKEN_CHANNELS))
    out = norm.transform(frames[0])
    assert (out[:, -len(TOKEN_CHANNELS):] == frames[0][:, -len(TOKEN_CHANNELS):]).all()
    assert abs(float(np.concatenate([norm.transform(f) for f in frames])[:, 0].mean())) < 1e-5


@pytest.mark.parametrize("name", ["rnn", "attention", "cnn"])
def test_float_inputs_ignore_the_token_channels_and_viewpoints_ignore_the_floats(name):
    vocab, n_float = list(NOTE_TOKENS.values()), 19
    extra = {"dims": 1, "channels": [8, 8]} if name == "cnn" else {}
    x = torch.randn(3, 12, n_float + len(vocab))
    x[..., n_float:] = torch.randint(0, 4, (3, 12, len(vocab))).float()
    torch.manual_seed(0)
    floats = build_model(name, {"in_channels": n_float + len(vocab), "n_classes": 4, "token_vocab": vocab, **extra}).eval()
    torch.manual_seed(0)
    plain = build_model(name, {"in_channels": n_float, "n_classes": 4, **extra}).eval()
    assert torch.allclose(floats(x), plain(x[..., :n_float]))  # the old frames model, same weights
    viewpoints = build_model(name, {"in_channels": n_float + len(vocab), "n_classes": 4, "token_vocab": vocab,
                                    "inputs": "viewpoints", **extra}).eval()
    other = x.clone()
    other[..., :n_float] = torch.randn(3, 12, n_float)
    assert torch.allclose(viewpoints(x), viewpoints(other))


def test_viewpoint_inputs_need_note_frames():
    params = params_from_dict({"model": {"rnn": {"inputs": "viewpoints", "view": "tokens"}}})
    with pytest.raises(ValueError, match=r"model\.rnn\.inputs: viewpoints needs note frames.*inputs: floats"):
        model_config("rnn", params, torch.zeros(2, 5, 3), 4)
    with pytest.raises(Exception, match="inputs"):
        params_from_dict({"model": {"rnn": {"inputs": "pitches"}}})


def test_a_notes_run_reads_tokens_only_where_a_network_reads_frames_and_refuses_stale_frames():
    from geomusic_lib.data import DataError
    from geomusic_lib.training.setup import check_token_channels, token_vocab

    notes = params_from_dict({"features": {"source": "notes"}, "model": {"rnn": {"view": "frames"},
                                                                        "cnn": {"view": "tokens"}}})
    assert token_vocab(notes, "rnn") == list(NOTE_TOKENS.values()) and token_vocab(notes, "cnn") == []
    assert model_config("cnn", notes, torch.zeros(2, 5, 1), 4)["token_vocab"] == []  # a token view of the features
    old = note_frames(melody(0), 2.0)[:, :-len(TOKEN_CHANNELS)]  # 19 channels, as extracted before the tokens
    with pytest.raises(DataError, match="not viewpoint tokens.*run 02_feature_extraction again"):
        check_token_channels([old], len(TOKEN_CHANNELS))
    check_token_channels([note_frames(melody(0), 2.0)], len(TOKEN_CHANNELS))
