"""Frame sequences (T×C float32 per track) on disk: one `data.npy` plus `index.parquet`.

The audio and spotify feature sources write them into a run's `features/frames/`; the
trainer, the predictor and the ensemble read them. They live in the data layer so that
inference never imports feature extraction.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from geomusic_lib.data.io import DataError
from geomusic_lib.core.fileio import atomic_write_bytes, atomic_write_json, atomic_write_parquet

FRAMES_DIR = "frames"


def write_frames(frames: dict[str, np.ndarray], out_dir: Path, channels: list[str]) -> Path:
    """Store T×C float32 frames as one `data.npy` plus `index.parquet` (track_id, start, length)."""
    frames_dir = out_dir / FRAMES_DIR
    ids = list(frames)
    lengths = np.array([frames[i].shape[0] for i in ids], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if ids else lengths
    width = len(channels)
    data = (np.concatenate([frames[i] for i in ids]).astype(np.float32) if ids
            else np.zeros((0, width), dtype=np.float32))
    buffer = _npy_bytes(data)
    atomic_write_bytes(frames_dir / "data.npy", buffer)
    index = pd.DataFrame({"track_id": ids, "start": starts, "length": lengths})
    atomic_write_parquet(index, frames_dir / "index.parquet")
    atomic_write_json(frames_dir / "meta.json", {"channels": channels, "n_tracks": len(ids),
                                                  "n_frames": int(lengths.sum())}, sort_keys=True)
    return frames_dir


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def load_frames(out_dir: str | Path) -> dict[str, np.ndarray]:
    """Frames written by the spotify (audio analysis) or audio source: track_id → T×C float32 array."""
    frames_dir = Path(out_dir) / FRAMES_DIR
    index_path, data_path = frames_dir / "index.parquet", frames_dir / "data.npy"
    if not index_path.is_file() or not data_path.is_file():
        raise DataError(
            f"{frames_dir}: no frames found. Run the 'audio' source, or the 'spotify' source with "
            "features.spotify.audio_analysis: true, with this output folder."
        )
    index = pd.read_parquet(index_path)
    data = np.load(data_path, mmap_mode="r")
    expected = int(index["length"].sum()) if len(index) else 0
    if data.shape[0] != expected:
        raise DataError(f"{data_path}: holds {data.shape[0]} frames but {index_path} lists {expected}. "
                           "Rerun the extraction to rewrite both.")
    return {tid: np.asarray(data[s:s + n], dtype=np.float32)
            for tid, s, n in zip(index["track_id"], index["start"], index["length"])}


def frames_for_tracks(track_ids: Iterable[str], out_dir: str | Path) -> list[np.ndarray] | None:
    """The stored frames in the order of `track_ids` (for `train_model(frames=...)`); None when the
    run has no frames. A track without frames is an error that names it."""
    if not (Path(out_dir) / FRAMES_DIR / "index.parquet").is_file():
        return None
    frames = load_frames(out_dir)
    ids = [str(t) for t in track_ids]
    missing = [t for t in ids if t not in frames]
    if missing:
        raise DataError(f"{Path(out_dir) / FRAMES_DIR}: no frames for {len(missing)} track(s) of the table "
                           f"(e.g. {missing[:3]}). Rerun the feature extraction for this run.")
    return [frames[t] for t in ids]


def frame_channels(out_dir: str | Path) -> list[str]:
    """Channel names of the stored frames, in column order."""
    meta = json.loads((Path(out_dir) / FRAMES_DIR / "meta.json").read_text(encoding="utf-8"))
    return list(meta["channels"])
