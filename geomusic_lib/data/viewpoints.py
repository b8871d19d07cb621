"""Melodic viewpoints: each sounding note of a tune as a few symbols (the event models' alphabet).

After Conklin & Witten's multiple viewpoints, as used by Hillewaere, Manderick & Conklin (ISMIR 2009,
"Global feature versus event models for folk song classification"): a tune becomes one symbol sequence
per viewpoint, which the `ngram` baseline (`geomusic_lib.training.ngram`) counts n-grams over.
Rests are dropped (a note's duration is its own); every viewpoint but `duration` is unchanged by a
transposition (with the tonic moved too), and `duration_ratio`, `interval` and `contour` by a tempo change.

- `interval`: semitones from the previous note (`s` at the first note);
- `contour`: `+`, `-` or `=` against the previous note (`s` at the first);
- `degree`: pitch class relative to the tune's tonic (`tonic_pc`, from its key), 0-11;
- `duration`: quarter-note length as a fraction (`1/2`, `3/2`);
- `duration_ratio`: length over the previous note's (`s` at the first);
- `metric`: music21's beat strength (metrical accent weight) at the note's onset.

Two viewpoints linked as `a*b` (e.g. `interval*duration`) read one symbol per note pairing both.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import pandas as pd

from geomusic_lib.core.params import NGRAM_VIEWPOINTS

#: The track-table columns the viewpoints are read from (the `folk` source writes them).
MELODY_COLUMNS = ["notes_midi", "notes_duration", "notes_beat_strength", "tonic_pc"]
START = "s"


def _symbols(values: np.ndarray, as_text: Any) -> list[str]:
    """`as_text` of each value, computed once per distinct value."""
    unique, inverse = np.unique(values, return_inverse=True)
    names = [as_text(v) for v in unique]
    return [names[i] for i in inverse.ravel()]


def _fraction(limit: int) -> Any:
    return lambda v: str(Fraction(float(v)).limit_denominator(limit))


def tune_viewpoints(midi: np.ndarray, duration: np.ndarray, beat_strength: np.ndarray,
                    tonic_pc: float) -> dict[str, list[str]]:
    """The `NGRAM_VIEWPOINTS` symbol sequences of one tune (one symbol per sounding note; NaN pitch = rest)."""
    midi = np.asarray(midi, dtype=np.float64)
    sounding = np.isfinite(midi)
    pitch = np.rint(midi[sounding]).astype(int)
    length = np.asarray(duration, dtype=np.float64)[sounding]
    accent = np.nan_to_num(np.asarray(beat_strength, dtype=np.float64)[sounding], nan=0.25)
    if len(pitch) == 0:
        return {name: [] for name in NGRAM_VIEWPOINTS}
    steps = np.diff(pitch)
    ratio = length[1:] / np.maximum(length[:-1], 1e-9)
    return {
        "interval": [START, *map(str, steps)],
        "contour": [START, *np.where(steps > 0, "+", np.where(steps < 0, "-", "=")).tolist()],
        "degree": list(map(str, (pitch - int(tonic_pc)) % 12)),
        "duration": _symbols(length, _fraction(48)),
        "duration_ratio": [START, *_symbols(ratio, _fraction(16))] if len(ratio) else [START],
        "metric": _symbols(accent, lambda v: f"{float(v):.3g}"),
    }


def viewpoint_sequence(tune: dict[str, list[str]], viewpoint: str) -> list[str]:
    """One viewpoint's symbols, or a linked one's (`a*b`: `a&b` per note)."""
    parts = viewpoint.split("*")
    if len(parts) == 1:
        return tune[viewpoint]
    return ["&".join(symbols) for symbols in zip(*(tune[p] for p in parts))]


def melody_viewpoints(frame: pd.DataFrame) -> list[dict[str, list[str]]]:
    """`tune_viewpoints` of every row of a frame holding `MELODY_COLUMNS`, in row order."""
    missing = [c for c in MELODY_COLUMNS if c not in frame.columns]
    if missing:
        raise KeyError(f"no column(s) {missing}: melodic viewpoints need a symbolic source (data.source: folk)")
    return [tune_viewpoints(m, d, b, t) for m, d, b, t in
            zip(*(frame[c].to_numpy() for c in MELODY_COLUMNS))]


def ngrams(tune: dict[str, list[str]], viewpoints: Sequence[str], orders: Sequence[int]) -> list[str]:
    """Every n-gram (n in `orders`) of each viewpoint of a tune, as `viewpoint:sym sym …` tokens."""
    tokens: list[str] = []
    for viewpoint in viewpoints:
        seq = viewpoint_sequence(tune, viewpoint)
        for n in orders:
            tokens.extend(f"{viewpoint}:{' '.join(seq[i:i + n])}" for i in range(len(seq) - n + 1))
    return tokens
