"""Shared pieces of the feature stage: the result type, input checks, atomic writes, frames."""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

FEATURES_FILE = "features.parquet"
STATUS_FILE = "status.parquet"
COVERAGE_FILE = "coverage.json"
CACHE_FILE = "cache.sqlite"
FRAMES_DIR = "frames"

# Per-track outcomes; coverage.json counts them.
STATUSES = ("fetched", "cached", "missing", "no_match", "forbidden", "pending")

# Columns that are the target or a proxy of it, per target: never features.
TARGET_PROXIES: dict[str, tuple[str, ...]] = {
    "station": (r"location_.*", r"station_.*", r"event_.*", r"latitude", r"longitude", r"city(_id)?",
                r"country", r"rg_country", r"utcoffset"),
    "artist": (r"artist_wd_country", r"artist_wd_coordinates", r"artist_country", r"artist_coordinates"),
}


class FeatureError(ValueError):
    """Bad input or settings for feature extraction; the message names the column or key and the fix."""


@dataclass
class FeatureResult:
    """Features indexed by `track_id`, the per-track status, and the coverage summary."""

    features: pd.DataFrame
    status: pd.DataFrame
    coverage: dict[str, Any]
    out_dir: Path
    frames_dir: Path | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return list(self.features.columns)


def is_target_proxy(column: str, target: str) -> bool:
    """True if `column` is the target or a proxy of it for this target ('station' or 'artist')."""
    if target not in TARGET_PROXIES:
        raise FeatureError(f"target must be one of {sorted(TARGET_PROXIES)}, got {target!r}")
    name = column.lower()
    return any(re.fullmatch(pattern, name) for pattern in TARGET_PROXIES[target])


def check_no_target_leak(columns: Iterable[str], target: str, where: str) -> None:
    """Raise if any feature column (or a feature derived from one, `<field>__<value>`) is a target proxy."""
    bad = sorted({c for c in columns if is_target_proxy(str(c).split("__")[0], target)})
    if bad:
        raise FeatureError(
            f"{where}: {bad} would leak the {target} target into the features (it is the target or a proxy "
            f"of it). Remove them from the feature list."
        )


def check_tracks(tracks: pd.DataFrame) -> pd.DataFrame:
    """Validate the input table and normalise column names to lower case; `track_id` becomes str."""
    frame = tracks.rename(columns=lambda c: str(c).strip().lower())
    if frame.columns.duplicated().any():
        dup = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise FeatureError(f"input tracks: columns {dup} appear twice once lower-cased. Keep one of each.")
    if "track_id" not in frame.columns:
        raise FeatureError(
            "input tracks: no 'track_id' column. The data stage must give one unique string id per track "
            f"(found columns {list(frame.columns)[:12]}...)."
        )
    frame = frame.copy()
    if frame["track_id"].isna().any():
        raise FeatureError(f"input tracks: column 'track_id' has {int(frame['track_id'].isna().sum())} empty values.")
    frame["track_id"] = frame["track_id"].astype(str)
    dup = frame["track_id"][frame["track_id"].duplicated()]
    if len(dup):
        raise FeatureError(
            f"input tracks: column 'track_id' is not unique ({len(dup)} repeats, e.g. {dup.iloc[0]!r}). "
            "Deduplicate tracks before feature extraction."
        )
    return frame.reset_index(drop=True)


def sample_tracks(frame: pd.DataFrame, sample_size: int | None, seed: int) -> pd.DataFrame:
    """A seeded subsample that keeps the input order (the same sample on every rerun)."""
    if sample_size is None or sample_size >= len(frame):
        return frame
    return frame.sample(n=sample_size, random_state=seed).sort_index().reset_index(drop=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(obj: dict[str, Any], path: Path) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def coverage_summary(status: pd.DataFrame, source: str, **extra: Any) -> dict[str, Any]:
    """Counts of each per-track status, plus run facts (requests, seconds, ...)."""
    counts = status["status"].value_counts()
    summary: dict[str, Any] = {"source": source, "tracks": int(len(status))}
    summary.update({name: int(counts.get(name, 0)) for name in STATUSES})
    summary["with_features"] = summary["fetched"] + summary["cached"]
    summary.update(extra)
    return summary


def write_outputs(
    features: pd.DataFrame, status: pd.DataFrame, coverage: dict[str, Any], out_dir: Path
) -> None:
    """features.parquet (index track_id), status.parquet and coverage.json, each written atomically."""
    features.index.name = "track_id"
    atomic_write_parquet(features, out_dir / FEATURES_FILE)
    atomic_write_parquet(status.reset_index(drop=True), out_dir / STATUS_FILE)
    write_json(coverage, out_dir / COVERAGE_FILE)


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
    write_json({"channels": channels, "n_tracks": len(ids), "n_frames": int(lengths.sum())},
               frames_dir / "meta.json")
    return frames_dir


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def load_frames(out_dir: str | Path) -> dict[str, np.ndarray]:
    """Frames written by the spotify (audio analysis) or audio source: track_id → T×C float32 array."""
    frames_dir = Path(out_dir) / FRAMES_DIR
    index_path, data_path = frames_dir / "index.parquet", frames_dir / "data.npy"
    if not index_path.is_file() or not data_path.is_file():
        raise FeatureError(
            f"{frames_dir}: no frames found. Run the 'audio' source, or the 'spotify' source with "
            "features.spotify.audio_analysis: true, with this output folder."
        )
    index = pd.read_parquet(index_path)
    data = np.load(data_path, mmap_mode="r")
    expected = int(index["length"].sum()) if len(index) else 0
    if data.shape[0] != expected:
        raise FeatureError(f"{data_path}: holds {data.shape[0]} frames but {index_path} lists {expected}. "
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
        raise FeatureError(f"{Path(out_dir) / FRAMES_DIR}: no frames for {len(missing)} track(s) of the table "
                           f"(e.g. {missing[:3]}). Rerun the feature extraction for this run.")
    return [frames[t] for t in ids]


def frame_channels(out_dir: str | Path) -> list[str]:
    """Channel names of the stored frames, in column order."""
    meta = json.loads((Path(out_dir) / FRAMES_DIR / "meta.json").read_text(encoding="utf-8"))
    return list(meta["channels"])
