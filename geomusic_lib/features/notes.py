"""The `notes` source: symbolic melodies (the `folk` data source's `notes_*` arrays) → per-note frames
for the sequence models and global symbolic features for the FCNN and the tree baselines.

Every pitch is taken relative to the tune's tonic (`tonic_pc`), so a transposition changes nothing.
Frames (T×C float32, one step per note or rest) go through the shared frames storage, so the
trainer's and the predictor's masking path reads them unchanged.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from geomusic_lib.data.note_tokens import note_tokens, TOKEN_CHANNELS
from geomusic_lib.features.base import FeatureError, FeatureResult, coverage_summary, write_frames, write_outputs
from geomusic_lib.core.progress import progress_bar

ARRAYS = ["notes_onset", "notes_bar_offset", "notes_bar_length", "notes_midi", "notes_duration", "notes_beat_strength"]
#: Per-note channels, in column order.
FRAME_CHANNELS = (["interval", "pitch_from_tonic"] + [f"degree_{d}" for d in range(12)]
                  + ["log2_duration", "beat_strength", "bar_position", "is_rest", "tune_position"] + TOKEN_CHANNELS)
COMPOUND = {6, 9, 12}
#: Frames keep the first this many notes and rests (all of 97 % of the Essen tunes; the longest has 520, and
#: a batch is padded to its longest sequence). Global features see the whole tune.
MAX_FRAMES = 128


def _melody(row: pd.Series) -> dict[str, np.ndarray]:
    arrays = {name.removeprefix("notes_"): np.asarray(row[name], dtype=np.float64) for name in ARRAYS}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) != 1:
        raise FeatureError(f"track {row['track_id']}: note arrays of different lengths {sorted(lengths)}; "
                           "rebuild the run's data (01_data_prep).")
    return arrays


def _tonic_reference(midi: np.ndarray, tonic_pc: float) -> float:
    """The tonic's MIDI pitch in the octave at or below the median sounding pitch."""
    median = float(np.median(midi[np.isfinite(midi)]))
    return tonic_pc + 12 * np.floor((median - tonic_pc) / 12)


def _intervals(midi: np.ndarray) -> np.ndarray:
    """Interval from the previous sounding note at each sounding note (0 at the first); NaN at rests."""
    out = np.full(len(midi), np.nan)
    sounding = np.flatnonzero(np.isfinite(midi))
    if len(sounding):
        out[sounding] = np.diff(midi[sounding], prepend=midi[sounding[0]])
    return out


def note_frames(m: dict[str, np.ndarray], tonic_pc: float) -> np.ndarray:
    """One step per note or rest: the `FRAME_CHANNELS` (finite float32; the `tok_*` channels hold the
    integer codes of `geomusic_lib.data.note_tokens`)."""
    midi, rest = m["midi"], ~np.isfinite(m["midi"])
    ref = _tonic_reference(midi, tonic_pc)
    degree = np.zeros((len(midi), 12))
    sounding = np.flatnonzero(~rest)
    degree[sounding, ((midi[sounding] - tonic_pc) % 12).astype(int)] = 1.0
    total = float(m["onset"][-1] + m["duration"][-1]) or 1.0
    metred = np.isfinite(m["bar_length"]) & (m["bar_length"] > 0)
    bar_position = np.divide(m["bar_offset"], m["bar_length"], out=np.zeros(len(midi)), where=metred)
    columns = [
        np.clip(np.nan_to_num(_intervals(midi)), -24, 24),
        np.where(rest, 0.0, midi - ref),
        *degree.T,
        np.log2(np.maximum(m["duration"], 1 / 64)),
        np.nan_to_num(m["beat_strength"], nan=0.25),
        np.clip(np.nan_to_num(bar_position), 0, 1),
        rest.astype(float),
        m["onset"] / total,
        *note_tokens(midi, m["duration"], m["beat_strength"], tonic_pc).T,
    ]
    return np.stack(columns, axis=1).astype(np.float32)


def _metre(text: object) -> tuple[float, float]:
    parts = str(text or "").split("/")
    try:
        return float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        return float("nan"), float("nan")


def global_features(m: dict[str, np.ndarray], tonic_pc: float, metre: object = None) -> dict[str, float]:
    """Tune-level symbolic features: pitch-class and interval histograms, range, durations, metre,
    length and contour (all finite)."""
    midi, duration = m["midi"], m["duration"]
    sounding = np.isfinite(midi)
    pitch, dur = midi[sounding], duration[sounding]
    rel = pitch - _tonic_reference(midi, tonic_pc)
    steps = np.diff(pitch)
    pc_weight = np.bincount(((pitch - tonic_pc) % 12).astype(int), weights=dur, minlength=12) / dur.sum()
    clipped = np.clip(steps, -8, 8).astype(int)
    interval_share = np.bincount(clipped + 8, minlength=17) / max(len(steps), 1)
    log_dur = np.log2(np.maximum(dur, 1 / 64))
    total = float(m["onset"][-1] + m["duration"][-1]) or 1.0
    num, den = _metre(metre)
    signs = np.sign(steps[steps != 0])
    feats = {f"pc_{d}": float(pc_weight[d]) for d in range(12)}
    feats.update({f"interval_{'le_-8' if b == -8 else 'ge_8' if b == 8 else b}": float(interval_share[b + 8])
                  for b in range(-8, 9)})
    feats.update({
        "range": float(np.ptp(pitch)), "pitch_mean": float(rel.mean()), "pitch_std": float(rel.std()),
        "first_degree": float((pitch[0] - tonic_pc) % 12), "ends_on_tonic": float((pitch[-1] - tonic_pc) % 12 == 0),
        "final_from_mean": float(pitch[-1] - pitch.mean()),
        "log2_duration_mean": float(log_dur.mean()), "log2_duration_std": float(log_dur.std()),
        "log2_duration_min": float(log_dur.min()), "log2_duration_max": float(log_dur.max()),
        "distinct_durations": float(len(np.unique(dur))),
        "dotted_share": float(np.mean(np.isclose((np.log2(dur / 1.5) + 1e-9) % 1, 0, atol=1e-6))),
        "rest_share": float(duration[~sounding].sum() / total),
        "log_notes": float(np.log(len(pitch))), "log_quarters": float(np.log(total)),
        "metre_numerator": 0.0 if np.isnan(num) else num, "metre_denominator": 0.0 if np.isnan(den) else den,
        "free_metre": float(np.isnan(num)), "compound_metre": float(num in COMPOUND),
        "triple_metre": float(num in (3, 9)),
        "pickup": float(m["bar_offset"][0] > 0),
        "downbeat_share": float(np.mean(m["beat_strength"][sounding] >= 1.0)),
        "beat_strength_mean": float(np.nanmean(m["beat_strength"][sounding])),
        "step_up_share": float(np.mean(steps > 0)) if len(steps) else 0.0,
        "step_down_share": float(np.mean(steps < 0)) if len(steps) else 0.0,
        "repeat_share": float(np.mean(steps == 0)) if len(steps) else 0.0,
        "mean_abs_interval": float(np.abs(steps).mean()) if len(steps) else 0.0,
        "largest_leap": float(np.abs(steps).max()) if len(steps) else 0.0,
        "direction_changes": float(np.mean(signs[1:] != signs[:-1])) if len(signs) > 1 else 0.0,
        "peak_position": float(m["onset"][sounding][int(np.argmax(pitch))] / total),
    })
    return feats


def notes_features(tracks: pd.DataFrame, progress: bool = True) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Global features (index `track_id`) and frames (track_id → T×C) of every track with notes."""
    missing = [c for c in [*ARRAYS, "tonic_pc"] if c not in tracks.columns]
    if missing:
        raise FeatureError(f"input tracks: no column(s) {missing}. features.source: notes needs a symbolic source "
                           "such as data.source: folk; rerun 01_data_prep.")
    rows, frames = {}, {}
    for _, row in progress_bar(tracks.iterrows(), total=len(tracks), desc="note features", unit="tune",
                               enabled=progress):
        melody = _melody(row)
        if not np.isfinite(melody["midi"]).any():
            continue
        tonic = float(row["tonic_pc"])
        frames[row["track_id"]] = note_frames(melody, tonic)[:MAX_FRAMES]
        rows[row["track_id"]] = global_features(melody, tonic, row.get("abc_metre"))
    features = pd.DataFrame.from_dict(rows, orient="index").astype("float64")
    features.index.name = "track_id"
    bad = ~np.isfinite(features.to_numpy())
    if bad.any():
        col = features.columns[np.flatnonzero(bad.any(axis=0))[0]]
        raise FeatureError(f"note features: column {col!r} has NaN or infinite values; a tune is malformed.")
    return features, frames


def extract_notes(tracks: pd.DataFrame, out_dir: Path, progress: bool = True) -> FeatureResult:
    """The feature stage for symbolic melodies: `features.parquet`, `coverage.json` and `frames/`."""
    start = time.monotonic()
    features, frames = notes_features(tracks, progress)
    status = pd.DataFrame({"track_id": tracks["track_id"].to_numpy(),
                           "status": np.where(tracks["track_id"].isin(features.index), "fetched", "missing")})
    coverage = coverage_summary(status, "notes", requests=0, seconds=round(time.monotonic() - start, 2))
    write_outputs(features, status, coverage, out_dir)
    frames_dir = write_frames(frames, out_dir, FRAME_CHANNELS)
    notes = {"frame_channels": FRAME_CHANNELS, "feature_note": "global symbolic features of each melody "
             "(relative to its tonic); frames: one step per note or rest"}
    return FeatureResult(features, status, coverage, out_dir, frames_dir=frames_dir, notes=notes)
