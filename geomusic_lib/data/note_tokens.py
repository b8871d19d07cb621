"""Categorical viewpoint tokens of each note or rest, the sequence networks' transposition-invariant input.

A viewpoint maps each step of a melody to one of a few symbols, as in the multiple-viewpoint models of
Conklin & Witten (1995): the interval from the previous sounding note, the scale degree relative to the
tune's tonic, the duration, the duration ratio to the previous note, the contour, and the metric weight.
None of them reads absolute pitch, so a tune and its transposition have the same tokens. These are
the n-gram baseline's viewpoints (`geomusic_lib.data.viewpoints`, open-ended symbols per sounding note),
quantised to small fixed vocabularies and aligned with the frames' steps (rests included), so that a
network can embed them.

Codes are small non-negative integers; 0 is "none" (a rest, or the first note where the viewpoint needs
a previous one). The notes source appends them to the frames as the last `len(NOTE_TOKENS)` channels
(`tok_<viewpoint>`), left unscaled, and a network with `inputs: viewpoints` (or `both`) embeds each one.
"""
from __future__ import annotations

import numpy as np

#: Viewpoint → vocabulary size (codes 0 … size − 1), in channel order.
NOTE_TOKENS: dict[str, int] = {
    "interval": 27,        # 1 first note, 2 … 26: −12 … +12 semitones (wider leaps clipped)
    "degree": 13,          # 1 … 12: semitones above the tonic
    "duration": 16,        # 1 … 15: log2 of the duration in quarter notes, in half steps, −4 … +3
    "duration_ratio": 8,   # 1 … 7: log2 of the duration over the previous note's, −3 … +3
    "contour": 4,          # 1 down, 2 repeat, 3 up
    "metric": 6,           # 1 … 5: beat strength 1, 1/2, 1/4, 1/8, 1/16 or weaker
}
TOKEN_CHANNELS = [f"tok_{name}" for name in NOTE_TOKENS]


def _previous_sounding(midi: np.ndarray) -> np.ndarray:
    """Index of the previous sounding note at each step (−1 where there is none)."""
    sounding = np.isfinite(midi)
    last = np.where(sounding, np.arange(len(midi)), -1)
    shifted = np.maximum.accumulate(np.concatenate([[-1], last[:-1]]))
    return shifted


def note_tokens(midi: np.ndarray, duration: np.ndarray, beat_strength: np.ndarray, tonic_pc: float) -> np.ndarray:
    """`(T, len(NOTE_TOKENS))` int64 codes of a melody's steps (`midi` NaN at rests; durations in
    quarter notes; music21's beat strength, NaN where unknown)."""
    midi, duration = np.asarray(midi, dtype=float), np.asarray(duration, dtype=float)
    sounding = np.isfinite(midi)
    prev = _previous_sounding(midi)
    has_prev = sounding & (prev >= 0)
    step = np.where(has_prev, midi - midi[np.maximum(prev, 0)], 0.0)
    interval = np.where(has_prev, np.clip(np.round(step), -12, 12) + 14, np.where(sounding, 1, 0))
    degree = np.where(sounding, np.mod(np.round(np.nan_to_num(midi) - tonic_pc), 12) + 1, 0)
    log_d = np.log2(np.maximum(duration, 1 / 64))
    dur = np.clip(np.round(2 * log_d), -8, 6) + 9
    ratio = np.where(has_prev, np.clip(np.round(log_d - log_d[np.maximum(prev, 0)]), -3, 3) + 4, 0)
    contour = np.where(has_prev, np.sign(step) + 2, 0)
    strength = np.asarray(beat_strength, dtype=float)
    metric = np.where(np.isfinite(strength) & (strength > 0),
                      np.clip(np.round(-np.log2(np.where(strength > 0, strength, 1.0))), 0, 4) + 1, 0)
    return np.stack([interval, degree, dur, ratio, contour, metric], axis=1).astype(np.int64)
