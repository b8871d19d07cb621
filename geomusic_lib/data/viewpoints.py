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

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import pandas as pd

from geomusic_lib.core.params import NGRAM_VIEWPOINTS, NgramSettings
from geomusic_lib.data.note_tokens import NOTE_TOKENS, note_tokens

#: The track-table columns the viewpoints are read from (the `folk` source writes them).
MELODY_COLUMNS = ["notes_midi", "notes_duration", "notes_beat_strength", "tonic_pc"]
START = "s"
NOTE_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


def pitch_name(midi: float) -> str:
    """`60` → `C4`."""
    return f"{NOTE_NAMES[int(midi) % 12]}{int(midi) // 12 - 1}"


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


def _track_arrays(track: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    missing = [c for c in MELODY_COLUMNS if c not in track.index]
    if missing:
        raise KeyError(f"track {track.get('track_id')!r}: no {missing}; a tune needs a symbolic source "
                       "(data.source: folk)")
    midi, duration, beat = (np.asarray(track[c], dtype=np.float64) for c in MELODY_COLUMNS[:3])
    return midi, duration, beat, float(track["tonic_pc"])


def tune_steps(track: pd.Series) -> pd.DataFrame:
    """One tune step by step (a row of the run's tracks): the note or rest, its duration and beat strength,
    its viewpoint symbols (the `ngram` baseline's alphabet, blank at rests) and its token codes (what the
    sequence networks embed, `note_tokens`; 0 = none)."""
    midi, duration, beat, tonic = _track_arrays(track)
    sounding = np.isfinite(midi)
    steps = pd.DataFrame({
        "note": [pitch_name(m) if np.isfinite(m) else "rest" for m in midi],
        "duration (q)": [str(Fraction(float(d)).limit_denominator(48)) for d in duration],
        "beat strength": np.round(beat, 3)})
    for name, symbols in tune_viewpoints(midi, duration, beat, tonic).items():
        column = np.full(len(midi), "", dtype=object)
        column[sounding] = symbols
        steps[name] = column
    codes = note_tokens(midi, duration, beat, tonic)
    for i, name in enumerate(NOTE_TOKENS):
        steps[f"tok_{name}"] = codes[:, i]
    return steps.rename_axis("step")


def tune_ngram_counts(track: pd.Series, viewpoints: Sequence[str], orders: Sequence[int],
                      top: int = 3) -> pd.DataFrame:
    """The n-grams of one tune that the `ngram` baseline counts, per viewpoint and order: how many there are,
    how many distinct, and the `top` most frequent (`symbols ×count`, symbols joined by spaces)."""
    midi, duration, beat, tonic = _track_arrays(track)
    tune = tune_viewpoints(midi, duration, beat, tonic)
    rows = []
    for viewpoint in viewpoints:
        for n in orders:
            counts = Counter(token.partition(":")[2] for token in ngrams(tune, [viewpoint], [n]))
            common = ", ".join(f"{gram} ×{k}" for gram, k in counts.most_common(top))
            rows.append({"viewpoint": viewpoint, "n": n, "n-grams": sum(counts.values()),
                         "distinct": len(counts), "most frequent": common})
    return pd.DataFrame(rows)


def has_melodies(frame: pd.DataFrame) -> bool:
    """Whether a track table holds the note arrays that viewpoints are read from (a symbolic source)."""
    return all(c in frame.columns for c in MELODY_COLUMNS)


def typical_tune(frame: pd.DataFrame, rows: Sequence[int]) -> int:
    """The position (among `rows` of `frame`) of the tune whose number of sounding notes is nearest the
    median of those rows: a tune of ordinary length, to show step by step."""
    lengths = np.array([int(np.isfinite(np.asarray(m, dtype=float)).sum())
                        for m in frame["notes_midi"].iloc[list(rows)]])
    return int(np.asarray(rows)[np.argmin(np.abs(lengths - np.median(lengths)))])


@dataclass
class TuneView:
    """One tune as the models read it: its row, its steps (`tune_steps`), its n-gram counts and a caption."""
    tune: pd.Series
    steps: pd.DataFrame
    ngrams: pd.DataFrame
    caption: str


def typical_tune_view(frame: pd.DataFrame, rows: Sequence[int], ngram: dict[str, Any]) -> TuneView | None:
    """The tune of median length among `rows`, read step by step and as the n-grams of the run's
    `baseline_settings.ngram` (`ngram`); None when the table holds no melodies."""
    if not has_melodies(frame):
        return None
    settings = NgramSettings.model_validate(ngram)
    tune = frame.iloc[typical_tune(frame, rows)]
    steps = tune_steps(tune)
    caption = (f"tune {tune['track_id']} (class {tune['label']}): {len(steps)} steps, "
               f"{int((steps['note'] != 'rest').sum())} sounding notes, tonic pitch class {int(tune['tonic_pc'])}")
    return TuneView(tune, steps, tune_ngram_counts(tune, settings.viewpoints, settings.orders), caption)
