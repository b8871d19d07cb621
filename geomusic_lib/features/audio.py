"""The `audio` source (extra: `pip install .[audio]`): local audio files → librosa frames and statistics.

The clean path for researchers with licensed audio (Spotify's terms forbid training models on
its content). Frames per track: MFCC, chroma and spectral descriptors (T×C float32); the
track-level features are the mean and standard deviation of each channel.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from geomusic_lib.core.progress import progress_bar

from geomusic_lib.features.base import (
    CACHE_FILE, FeatureError, FeatureResult, coverage_summary, write_frames, write_outputs,
)
from geomusic_lib.core.extras import require
from geomusic_lib.features.cache import CacheEntry, FeatureCache
from geomusic_lib.core.params import AudioParams

logger = logging.getLogger(__name__)
NS_AUDIO = "audio.frames"
SPECTRAL = ["spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "spectral_flatness",
            "zero_crossing_rate", "rms"]


def frame_channels(params: AudioParams) -> list[str]:
    return [f"mfcc_{i}" for i in range(params.n_mfcc)] + [f"chroma_{i}" for i in range(12)] + SPECTRAL


def _librosa():
    """librosa, or `MissingExtraError` naming the `audio` extra (librosa and soundfile)."""
    require("soundfile", "audio")
    return require("librosa", "audio")


def audio_frames(path: Path, params: AudioParams) -> np.ndarray:
    """Decode one file and return its frames (T×C float32, T ≤ params.max_frames)."""
    librosa = _librosa()
    y, sr = librosa.load(str(path), sr=params.sample_rate, mono=True)
    if y.size == 0:
        raise ValueError("no samples")
    hop = params.hop_length
    parts = [
        librosa.feature.mfcc(y=y, sr=sr, n_mfcc=params.n_mfcc, hop_length=hop),
        librosa.feature.chroma_stft(y=y, sr=sr, hop_length=hop),
        librosa.feature.spectral_centroid(y=y, sr=sr, hop_length=hop),
        librosa.feature.spectral_bandwidth(y=y, sr=sr, hop_length=hop),
        librosa.feature.spectral_rolloff(y=y, sr=sr, hop_length=hop),
        librosa.feature.spectral_flatness(y=y, hop_length=hop),
        librosa.feature.zero_crossing_rate(y, hop_length=hop),
        librosa.feature.rms(y=y, hop_length=hop),
    ]
    steps = min(p.shape[1] for p in parts)
    frames = np.concatenate([p[:, :steps] for p in parts], axis=0).T
    return np.ascontiguousarray(frames[: params.max_frames], dtype=np.float32)


def frame_statistics(frames: np.ndarray, channels: list[str]) -> dict[str, float]:
    """Track-level features: mean and standard deviation of every frame channel."""
    means, stds = frames.mean(axis=0), frames.std(axis=0)
    stats = {f"{c}_mean": float(m) for c, m in zip(channels, means)}
    stats.update({f"{c}_std": float(s) for c, s in zip(channels, stds)})
    return stats


def read_manifest(manifest: Path | None, track_ids: pd.Series) -> dict[str, Path]:
    """track_id → audio path from a CSV with columns `track_id,path` (relative paths: to the CSV's folder)."""
    if manifest is None:
        raise FeatureError("features.audio.manifest is not set: give a CSV with columns track_id,path.")
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FeatureError(f"{manifest}: audio manifest not found (features.audio.manifest). "
                           "Expected a CSV with columns track_id,path.")
    table = pd.read_csv(manifest, dtype=str)
    missing = {"track_id", "path"} - set(table.columns)
    if missing:
        raise FeatureError(f"{manifest}: missing column(s) {sorted(missing)}; expected columns track_id,path.")
    paths = {tid: (Path(p) if Path(p).is_absolute() else manifest.parent / p)
             for tid, p in zip(table["track_id"], table["path"]) if isinstance(p, str)}
    return {tid: paths[tid] for tid in track_ids if tid in paths}


def extract_audio(tracks: pd.DataFrame, params: AudioParams, out_dir: Path) -> FeatureResult:
    """Frames and statistics for every track listed in the manifest, cached per track (resumable)."""
    _librosa()  # fail early, with the install hint, if the extra is missing
    start = time.monotonic()
    channels = frame_channels(params)
    paths = read_manifest(params.manifest, tracks["track_id"])
    fetched: set[str] = set()
    with FeatureCache(out_dir / CACHE_FILE) as cache:
        key = f"{NS_AUDIO}:{params.sample_rate}:{params.n_mfcc}:{params.hop_length}:{params.max_frames}"
        have = cache.get_many(key, paths)
        todo = [t for t in paths if t not in have]
        for track_id in progress_bar(todo, desc="audio files", unit="file", enabled=bool(todo)):
            try:
                frames = audio_frames(paths[track_id], params)
                entry = CacheEntry("ok", frames.tobytes(), float(frames.shape[0]))
            except Exception as err:  # unreadable or missing file: recorded as missing, not fatal
                logger.warning("%s (track %s): could not decode audio: %s", paths[track_id], track_id, err)
                entry = CacheEntry("missing")
            cache.put_many(key, [(track_id, entry)])
            fetched.add(track_id)
        entries = cache.get_many(key, paths)
    frames_by_id, rows, statuses = {}, {}, []
    for track_id in tracks["track_id"]:
        entry = entries.get(track_id)
        if entry is None or entry.status != "ok":
            statuses.append("missing")
            continue
        frames = np.frombuffer(entry.payload, dtype=np.float32).reshape(-1, len(channels))
        frames_by_id[track_id] = frames
        rows[track_id] = frame_statistics(frames, channels)
        statuses.append("fetched" if track_id in fetched else "cached")
    stat_names = [f"{c}_mean" for c in channels] + [f"{c}_std" for c in channels]
    features = pd.DataFrame.from_dict(rows, orient="index", columns=stat_names).astype("float64")
    features.index.name = "track_id"
    status = pd.DataFrame({"track_id": tracks["track_id"].to_numpy(), "status": statuses})
    coverage = coverage_summary(status, "audio", requests=0, listed=len(paths),
                                seconds=round(time.monotonic() - start, 2))
    write_outputs(features, status, coverage, out_dir)
    frames_dir = write_frames(frames_by_id, out_dir, channels)
    return FeatureResult(features, status, coverage, out_dir, frames_dir=frames_dir)
