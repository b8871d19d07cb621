"""CLI: `geomusic features --input tracks.parquet --source spotify --out DIR`.

Safe to kill at any time: rerun the same command to resume from the cache in DIR.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from geomusic_lib.data.io import DataError
from geomusic_lib.core.extras import MissingExtraError
from geomusic_lib.features import FeatureError, SpotifyForbiddenError, SpotifyUnavailableError, extract_features
from geomusic_lib.features import summary_line
from geomusic_lib.core.params import FeatureParams, ParamsError, SpotifyParams, load_params

#: errors that are the user's to fix: one line on stderr and exit 2 (anything else keeps its traceback)
KNOWN_ERRORS = (FeatureError, ParamsError, DataError, MissingExtraError, SpotifyForbiddenError,
                SpotifyUnavailableError)

#: CLI flag → features.spotify key
SPOTIFY_FLAGS = {"batch_size": "--batch-size", "timeout_s": "--timeout", "backoff_base_s": "--backoff-base",
                 "backoff_max_s": "--backoff-max", "max_tries": "--max-tries"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geomusic features", description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, type=Path, help="tracks table (.parquet or .csv) with track_id")
    parser.add_argument("--out", required=True, type=Path, help="output folder (features, cache, frames)")
    parser.add_argument("--source", choices=["columns", "spotify", "audio", "metadata"], help="overrides params")
    parser.add_argument("--params", type=Path, help="params YAML; its `features:` section is used")
    parser.add_argument("--target", choices=["station", "artist"], default=None,
                        help="label whose proxies are refused (default: data.mirage.target from params)")
    parser.add_argument("--sample-size", type=int, default=None, help="seeded subsample of tracks")
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (default: params seed)")
    parser.add_argument("--api-base", default=None, help="Spotify API root (a local fake in tests)")
    parser.add_argument("--audio-analysis", action="store_true", help="also fetch Spotify segments as frames")
    spotify = parser.add_argument_group("spotify requests (override features.spotify in params)")
    spotify.add_argument("--batch-size", dest="batch_size", type=int, help="ids per audio-features call (1-100)")
    spotify.add_argument("--timeout", dest="timeout_s", type=float, help="seconds before a request times out")
    spotify.add_argument("--backoff-base", dest="backoff_base_s", type=float,
                         help="first backoff step in seconds on 5xx/timeouts (doubles, with jitter)")
    spotify.add_argument("--backoff-max", dest="backoff_max_s", type=float, help="longest backoff step in seconds")
    spotify.add_argument("--max-tries", dest="max_tries", type=int, help="tries per request before giving up")
    parser.add_argument("--audio-manifest", type=Path, default=None, help="CSV track_id,path for --source audio")
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries and progress details")
    return parser


def read_tracks(path: Path) -> pd.DataFrame:
    """Read the tracks table; ids stay strings."""
    if not path.is_file():
        raise FeatureError(f"{path}: input file not found (--input).")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() in {".csv", ".txt"}:
        return pd.read_csv(path, dtype={"track_id": str, "track_sp_id": str})
    raise FeatureError(f"{path}: expected a .parquet or .csv file (--input).")


def resolve_params(args: argparse.Namespace) -> tuple[FeatureParams, str, int]:
    params = load_params(args.params) if args.params else None
    features = params.features.model_copy(deep=True) if params else FeatureParams()
    if args.source:
        features.source = args.source
    if args.sample_size is not None:
        features.sample_size = args.sample_size
    if args.api_base:
        features.spotify.api_base = args.api_base
    if args.audio_analysis:
        features.spotify.audio_analysis = True
    features.spotify = spotify_overrides(features.spotify, args)
    if args.audio_manifest:
        features.audio.manifest = args.audio_manifest
    target = args.target or (params.data.mirage.target if params else "station")
    seed = args.seed if args.seed is not None else (params.seed if params else 42)
    return features, target, seed


def spotify_overrides(spotify: SpotifyParams, args: argparse.Namespace) -> SpotifyParams:
    """`spotify` with the request flags given on the command line, validated like a params file."""
    given = {key: getattr(args, key) for key in SPOTIFY_FLAGS if getattr(args, key, None) is not None}
    try:
        return SpotifyParams.model_validate({**spotify.model_dump(), **given})
    except ValidationError as err:
        bad = "; ".join(f"{SPOTIFY_FLAGS.get(str(e['loc'][0]), e['loc'][0])} {e['input']!r}: {e['msg']}"
                        for e in err.errors())
        raise ParamsError(f"command line: {bad}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        features, target, seed = resolve_params(args)
        result = extract_features(read_tracks(args.input), features, args.out, target=target, seed=seed)
    except KNOWN_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{features.source}: {summary_line(result.coverage)}")  # stdout copy of the summary
    print(f"wrote {args.out / 'features.parquet'} ({len(result.features)} tracks x "
          f"{len(result.feature_names)} features) and {args.out / 'coverage.json'}")
    return 0

