"""The `columns` source: Spotify audio features already present in the input file (no API).

Accepts MIRAGE v1 names (`track_sp_danceability`), the pre-v1 flat names
(`track_danceability`, see MIRAGE_exportvariables.csv) and the bare Web API names
(`danceability`, as in Kaggle exports). Output columns always use the v1 names.
"""
from __future__ import annotations

import pandas as pd

from geomusic_lib.features.base import FeatureError, FeatureResult, coverage_summary, write_outputs

# Web API field → MIRAGE v1 column (lower case).
API_TO_V1: dict[str, str] = {
    "danceability": "track_sp_danceability",
    "energy": "track_sp_energy",
    "key": "track_sp_key",
    "loudness": "track_sp_loudness",
    "mode": "track_sp_mode",
    "speechiness": "track_sp_speechiness",
    "acousticness": "track_sp_acousticness",
    "instrumentalness": "track_sp_instrumentalness",
    "liveness": "track_sp_liveness",
    "valence": "track_sp_valence",
    "tempo": "track_sp_tempo",
    "duration_ms": "track_sp_duration",
    "time_signature": "track_sp_beatsperbar",
}
AUDIO_FEATURE_COLUMNS: list[str] = list(API_TO_V1.values())

# Pre-v1 export names (lower-cased from MIRAGE_exportvariables.csv) → v1 names.
LEGACY_TO_V1: dict[str, str] = {
    "track_danceability": "track_sp_danceability",
    "track_energy": "track_sp_energy",
    "track_key": "track_sp_key",
    "track_loudness": "track_sp_loudness",
    "track_mode": "track_sp_mode",
    "track_speechiness": "track_sp_speechiness",
    "track_instrumentalness": "track_sp_instrumentalness",
    "track_liveness": "track_sp_liveness",
    "track_valence": "track_sp_valence",
    "track_tempo": "track_sp_tempo",
    "track_duration": "track_sp_duration",
    "track_beatsperbar": "track_sp_beatsperbar",
    # the legacy export already used `track_sp_Acousticness`, which lower-cases to the v1 name
    "artist_name": "artist_sp_name",
    "track_name": "track_sp_name",
    "wd_artist_name": "artist_wd_name",
    "wd_artist_genres": "artist_wd_genre",
    "artist_instruments": "artist_wd_instruments",
    "artist_voicetypes": "artist_wd_voicetypes",
    "artist_country": "artist_wd_country",
    "artist_coordinates": "artist_wd_coordinates",
    "track_instrumentation": "track_wd_instrumentation",
    "track_language": "track_wd_language",
    "wd_track_name": "track_wd_name",
}


def normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Lower-case names and rename legacy/bare names to v1, never overwriting a v1 column."""
    frame = frame.rename(columns=lambda c: str(c).strip().lower())
    renames: dict[str, str] = {}
    for aliases in (LEGACY_TO_V1, API_TO_V1):
        for old, new in aliases.items():
            if old in frame.columns and new not in frame.columns and new not in renames.values():
                renames[old] = new
    return frame.rename(columns=renames)


def audio_feature_columns(frame: pd.DataFrame) -> list[str]:
    """The v1 audio-feature columns present in a normalised frame, in a fixed order."""
    return [c for c in AUDIO_FEATURE_COLUMNS if c in frame.columns]


def extract_columns(tracks: pd.DataFrame, out_dir, target: str) -> FeatureResult:
    """Use the audio-feature columns of the input directly; rows with none of them are `missing`."""
    frame = normalise_columns(tracks)
    names = audio_feature_columns(frame)
    if not names:
        raise FeatureError(
            "input tracks: no Spotify audio-feature columns found (looked for v1 names such as "
            "'track_sp_danceability', legacy names such as 'track_danceability', or bare API names such as "
            "'danceability'). Use features.source: spotify, audio or metadata instead."
        )
    values = frame[names].apply(pd.to_numeric, errors="coerce").astype("float64")
    values.index = pd.Index(frame["track_id"], name="track_id")
    complete = values.notna().all(axis=1)  # a partly missing row would stop training: count it as missing
    status = pd.DataFrame({"track_id": values.index, "status": ["cached" if ok else "missing" for ok in complete]})
    features = values[complete]
    coverage = coverage_summary(status, "columns", feature_columns=names, requests=0)
    write_outputs(features, status, coverage, out_dir)
    return FeatureResult(features, status, coverage, out_dir)
