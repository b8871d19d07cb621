"""Feature extraction: tracks → `features.parquet` (index `track_id`), `coverage.json`, optional frames.

Sources, chosen by `features.source`:
- `columns`: audio features already in the input (`track_sp_*`, legacy or bare API names);
- `spotify`: the Web API (batched, cached, resumable; see `SPOTIFY_NOTICE`);
- `audio`: local audio files via librosa (extra `[audio]`);
- `metadata`: MIRAGE's Wikidata fields as multi-hot features (not acoustic).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from geomusic_lib.data.frames import frame_channels, load_frames
from geomusic_lib.features.base import (
    FeatureError, FeatureResult, check_no_target_leak, check_tracks, is_target_proxy, sample_tracks,
)
from geomusic_lib.features.columns import AUDIO_FEATURE_COLUMNS, normalise_columns
from geomusic_lib.features.spotify import (
    SPOTIFY_NOTICE, SpotifyForbiddenError, SpotifyUnavailableError,
)
from geomusic_lib.features.matching import best_match, normalise_title
from geomusic_lib.features.metadata import parse_list
from geomusic_lib.features.notes import FRAME_CHANNELS, MAX_FRAMES, notes_features
from geomusic_lib.features.spotify import RetryPolicy, make_client, read_credentials
from geomusic_lib.core.params import FeatureParams

__all__ = [
    "AUDIO_FEATURE_COLUMNS", "FeatureError", "FeatureResult", "SPOTIFY_NOTICE", "SpotifyForbiddenError",
    "SpotifyUnavailableError", "extract_features", "frame_channels", "load_frames", "summary_line",
    "is_target_proxy", "normalise_columns", "best_match", "normalise_title", "parse_list", "FRAME_CHANNELS",
    "MAX_FRAMES", "notes_features", "RetryPolicy", "make_client", "read_credentials",
]


def extract_features(tracks: pd.DataFrame, params: FeatureParams, out_dir: str | Path,
                     target: str = "station", seed: int = 42, client: Any | None = None) -> FeatureResult:
    """Run the source named in `params.source`; writes `out_dir/features.parquet` and `coverage.json`.

    `target` ('station' or 'artist') names the label, so that no proxy of it becomes a feature;
    `seed` drives `params.sample_size`; `client` lets tests pass a prepared spotipy client.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = sample_tracks(normalise_columns(check_tracks(tracks)), params.sample_size, seed)
    result = _dispatch(frame, params, out_dir, target, client)
    check_no_target_leak(result.features.columns, target, f"{params.source} features")
    print(f"features ({params.source}): {summary_line(result.coverage)}", flush=True)  # stdout: a result, not a warning
    return result


def _dispatch(frame: pd.DataFrame, params: FeatureParams, out_dir: Path, target: str,
              client: Any | None) -> FeatureResult:
    if params.source == "columns":
        from geomusic_lib.features.columns import extract_columns

        return extract_columns(frame, out_dir, target)
    if params.source == "spotify":
        from geomusic_lib.features.spotify import extract_spotify

        return extract_spotify(frame, params.spotify, out_dir, client=client)
    if params.source == "audio":
        from geomusic_lib.features.audio import extract_audio

        return extract_audio(frame, params.audio, out_dir)
    if params.source == "metadata":
        from geomusic_lib.features.metadata import extract_metadata

        return extract_metadata(frame, params.metadata_fields, params.metadata_min_count, out_dir, target)
    if params.source == "notes":
        from geomusic_lib.features.notes import extract_notes

        return extract_notes(frame, out_dir)
    raise FeatureError(f"features.source: unknown source {params.source!r}")


def summary_line(coverage: dict[str, Any]) -> str:
    """One line with the coverage counts, for logs and the CLI."""
    keys = ["tracks", "with_features", "fetched", "cached", "missing", "no_match", "forbidden", "pending",
            "requests", "seconds"]
    return ", ".join(f"{k}={coverage[k]}" for k in keys if k in coverage)
