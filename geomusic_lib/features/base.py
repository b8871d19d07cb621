"""Shared pieces of the feature stage: the result type, input checks and output files."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from geomusic_lib.data.frames import FRAMES_DIR, write_frames  # noqa: F401 - the sources write frames
from geomusic_lib.core.fileio import atomic_write_json, atomic_write_parquet

FEATURES_FILE = "features.parquet"
STATUS_FILE = "status.parquet"
COVERAGE_FILE = "coverage.json"
CACHE_FILE = "cache.sqlite"

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
    atomic_write_json(out_dir / COVERAGE_FILE, coverage, sort_keys=True)
