"""The `spotify` source: audio features in batches of 100 ids, search for rows without an id,
optional audio-analysis segments as frames. Polite (Retry-After, backoff with jitter, bounded
tries), resumable (every response cached as it arrives) and honest about Spotify's terms.
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import pandas as pd

from geomusic_lib.core.extras import require
from geomusic_lib.core.progress import progress_bar
from geomusic_lib.features.base import (
    CACHE_FILE, FeatureError, FeatureResult, coverage_summary, write_frames, write_outputs,
)
from geomusic_lib.features.matching import best_match, search_query
from geomusic_lib.features.cache import CacheEntry, FeatureCache
from geomusic_lib.features.columns import API_TO_V1, AUDIO_FEATURE_COLUMNS
from geomusic_lib.core.params import SpotifyParams

logger = logging.getLogger(__name__)
T = TypeVar("T")

SPOTIFY_NOTICE = (
    "Spotify notice: (1) Spotify stopped serving the audio-features and audio-analysis endpoints to apps "
    "created after 2024-11-27; such apps get HTTP 403, and only older apps with extended access still "
    "receive data. (2) Spotify's Developer Terms (section IV.2.a.i) and Developer Policy (section III.14) "
    "forbid using Spotify content to train machine-learning models. Use what this source fetches only "
    "where those terms allow it; the 'columns' source (features already in your file) and the 'audio' "
    "source (your own licensed audio) remain available."
)
FORBIDDEN_HELP = (
    "Spotify answered 403 Forbidden on {endpoint}. Apps created after 2024-11-27 no longer have access to "
    "the audio-features and audio-analysis endpoints, and retrying will not help. Everything fetched so far "
    "is kept in {cache}. Use features.source: columns (features already in the input file) or "
    "features.source: audio (local audio files) instead, or an older app with extended access."
)
SEARCH_FORBIDDEN_HELP = (
    "Spotify answered 403 Forbidden on {endpoint}: this app may not use the search endpoint (Spotify limits "
    "development-mode apps and has changed their access several times), and retrying will not help. Matches "
    "found so far are kept in {cache}. Put Spotify track ids in the input (column track_sp_id) so no search is "
    "needed, or use features.source: columns (features already in the input file) or features.source: audio "
    "(local audio files)."
)
CREDENTIALS_HELP = (
    "Spotify credentials not found: set SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET in the environment or in "
    "a .env file in the working folder (two lines: SPOTIPY_CLIENT_ID=... and SPOTIPY_CLIENT_SECRET=...). "
    "Create them at https://developer.spotify.com/dashboard. They are never read from params files."
)
SEGMENT_CHANNELS = [f"timbre_{i}" for i in range(12)] + [f"pitch_{i}" for i in range(12)] + [
    "loudness_start", "loudness_max", "duration"]
_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
NS_FEATURES, NS_SEARCH, NS_ANALYSIS = "spotify.audio_features", "spotify.search", "spotify.audio_analysis"
ARTIST_COLUMNS = ("artist_sp_name", "artist_wd_name", "artist")
TITLE_COLUMNS = ("track_sp_name", "track_wd_name", "title")


class SpotifyForbiddenError(RuntimeError):
    """403 on an audio endpoint: the app has no access; retrying will not help."""


class SpotifyUnavailableError(RuntimeError):
    """The API kept failing after the allowed number of tries (or asked us to wait too long)."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class _Transient(Exception):
    """A failure worth retrying (5xx, timeout, connection error, malformed JSON)."""


# ---------------------------------------------------------------- credentials and client

def read_credentials(env_file: str | Path | None = None) -> tuple[str, str]:
    """Client id and secret from the environment, else from `.env` (never from params)."""
    client_id, secret = os.environ.get("SPOTIPY_CLIENT_ID"), os.environ.get("SPOTIPY_CLIENT_SECRET")
    if not (client_id and secret):
        dotenv = require("dotenv", "spotify")
        path = env_file or dotenv.find_dotenv(usecwd=True)
        values = dotenv.dotenv_values(path) if path else {}
        client_id = client_id or values.get("SPOTIPY_CLIENT_ID")
        secret = secret or values.get("SPOTIPY_CLIENT_SECRET")
    if not (client_id and secret):
        raise FeatureError(CREDENTIALS_HELP)
    return client_id, secret


_AUTH = re.compile(r"(Basic|Bearer)\s+[A-Za-z0-9+/=._\-]+")


def _redact(message: str) -> str:
    return _AUTH.sub(r"\1 <redacted>", message)


class _RedactAuth(logging.Filter):
    """spotipy logs request headers at DEBUG level; strip the Basic/Bearer credentials from them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Basic" in message or "Bearer" in message:
            record.msg, record.args = _redact(message), ()
        return True


class _ToOurLogger(logging.Handler):
    """Re-emit spotipy's records through this module's logger: its errors (each retried request logs
    one, with every id) become INFO, shown with `-v`; its debug lines stay DEBUG."""

    def emit(self, record: logging.LogRecord) -> None:
        level = logging.INFO if record.levelno >= logging.WARNING else logging.DEBUG
        logger.log(level, "spotipy: %s", _redact(record.getMessage()))


def _install_redaction() -> None:
    """Redact credentials in spotipy's records and route them through our logger (not straight to the root)."""
    for name in ("spotipy", "spotipy.client", "spotipy.oauth2"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _RedactAuth) for f in log.filters):
            log.addFilter(_RedactAuth())
    root = logging.getLogger("spotipy")
    if not any(isinstance(h, _ToOurLogger) for h in root.handlers):
        root.addHandler(_ToOurLogger())
    root.propagate = False


def make_client(params: SpotifyParams) -> Any:
    """A spotipy client with its own retries off, so our policy (Retry-After, backoff) is what runs."""
    spotipy, requests = require("spotipy", "spotify"), require("requests", "spotify")
    from spotipy.cache_handler import MemoryCacheHandler
    from spotipy.oauth2 import SpotifyClientCredentials

    _install_redaction()
    client_id, secret = read_credentials()
    auth = SpotifyClientCredentials(
        client_id=client_id, client_secret=secret, requests_timeout=params.timeout_s,
        cache_handler=MemoryCacheHandler(),  # never write the token to a .cache file
    )
    session = requests.Session()  # a plain session: no urllib3 Retry adapter
    client = spotipy.Spotify(auth_manager=auth, requests_session=session, requests_timeout=params.timeout_s,
                             retries=0, status_retries=0)
    if params.api_base:
        base = params.api_base.rstrip("/")
        auth.OAUTH_TOKEN_URL = f"{base}/api/token"
        client.prefix = f"{base}/v1/"
    return client


# ---------------------------------------------------------------- retry policy

@dataclass
class RetryPolicy:
    """Honour 429 Retry-After; exponential backoff with full jitter on 5xx, timeouts and bad JSON."""

    max_tries: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 600.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    requests: int = 0
    retries: int = 0

    @classmethod
    def from_params(cls, params: SpotifyParams) -> "RetryPolicy":
        return cls(params.max_tries, params.backoff_base_s, params.backoff_max_s, params.max_retry_after_s)

    def call(self, fn: Callable[[], T], endpoint: str, cache_path: Path | None = None) -> T:
        """Run `fn` until it succeeds, a fatal error occurs, or `max_tries` is used up.

        Only transient failures are retried (429, 5xx, timeouts, connection errors, malformed JSON);
        anything else, such as missing credentials (`FeatureError`), stops at once.
        """
        requests = require("requests", "spotify")
        spotipy_errors = require("spotipy.exceptions", "spotify")
        SpotifyException, SpotifyOauthError = spotipy_errors.SpotifyException, spotipy_errors.SpotifyOauthError

        last = ""
        for attempt in range(self.max_tries):
            self.requests += 1
            try:
                result = fn()
                if result is None:
                    raise _Transient("malformed JSON in the response")
                return result
            except SpotifyException as err:
                if err.http_status == 403 and "audio" in endpoint:
                    raise SpotifyForbiddenError(FORBIDDEN_HELP.format(endpoint=endpoint, cache=cache_path)) from None
                if err.http_status == 403:
                    raise SpotifyUnavailableError(SEARCH_FORBIDDEN_HELP.format(endpoint=endpoint, cache=cache_path),
                                                  http_status=403) from None
                if err.http_status == 429:
                    wait, last = self._retry_after(err), "429 Too Many Requests"
                elif err.http_status >= 500:
                    wait, last = self._backoff(attempt), f"HTTP {err.http_status}"
                else:
                    raise SpotifyUnavailableError(
                        f"Spotify answered HTTP {err.http_status} on {endpoint}: {err.msg}".strip(),
                        http_status=err.http_status) from None
            except SpotifyOauthError as err:
                raise FeatureError(
                    f"Spotify's token endpoint rejected the client credentials ({err.error or 'no reason given'}). "
                    "Check SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET in the environment or .env."
                ) from None
            except (requests.exceptions.Timeout, requests.exceptions.ConnectionError,
                    requests.exceptions.ChunkedEncodingError) as err:
                wait, last = self._backoff(attempt), type(err).__name__
            except (_Transient, json.JSONDecodeError, requests.exceptions.JSONDecodeError) as err:
                wait, last = self._backoff(attempt), str(err) or "malformed response"
            if attempt + 1 < self.max_tries:
                self.retries += 1
                logger.info("%s on %s; retrying in %.2f s (try %d of %d)", last, endpoint, wait, attempt + 2,
                            self.max_tries)
                self.sleep(wait)
        raise SpotifyUnavailableError(
            f"{endpoint}: gave up after {self.max_tries} tries (last: {last}). Everything fetched so far is "
            f"cached in {cache_path}; rerun later to resume, or raise features.spotify.max_tries."
        )

    def _backoff(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** attempt))

    def _retry_after(self, err: Any) -> float:
        raw = (err.headers or {}).get("Retry-After") or (err.headers or {}).get("retry-after")
        try:
            wait = float(raw)
        except (TypeError, ValueError):
            wait = self.backoff_base_s
        if wait > self.max_retry_after_s:
            raise SpotifyUnavailableError(
                f"Spotify asked us to wait {wait:.0f} s (Retry-After), more than "
                f"features.spotify.max_retry_after_s={self.max_retry_after_s:.0f}. Rerun later: the cache keeps "
                "everything fetched so far."
            )
        return wait


# ---------------------------------------------------------------- the extractor

def _first_text(row: pd.Series, columns: tuple[str, ...]) -> str | None:
    for column in columns:
        value = row.get(column)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _given_ids(frame: pd.DataFrame) -> pd.Series:
    if "track_sp_id" not in frame.columns:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    ids = frame["track_sp_id"].astype("string").str.strip().str.replace(r"^spotify:track:", "", regex=True)
    return ids.where(ids.notna() & (ids != ""), None).astype(object)


class SpotifyExtractor:
    """Resolves Spotify ids, fetches features/segments through the cache, and builds the table."""

    def __init__(self, params: SpotifyParams, out_dir: Path, client: Any | None = None,
                 policy: RetryPolicy | None = None) -> None:
        self.params, self.out_dir = params, Path(out_dir)
        self.cache_path = self.out_dir / CACHE_FILE
        self.policy = policy or RetryPolicy.from_params(params)
        self._client = client
        self.fetched_ids: set[str] = set()
        self.stopped: str | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.params)
        return self._client

    def run(self, tracks: pd.DataFrame) -> FeatureResult:
        logger.warning(SPOTIFY_NOTICE)
        start = time.monotonic()
        frames_dir = None
        with FeatureCache(self.cache_path) as cache:
            ids = self._resolve_ids(tracks, cache)
            try:
                self._fetch_features(ids, cache)
                if self.params.audio_analysis:
                    self._fetch_analysis(ids, cache)
            except SpotifyForbiddenError:
                self.stopped = "forbidden"
                self._finish(tracks, ids, cache, start)
                raise
            except SpotifyUnavailableError:
                self.stopped = "unavailable"
                self._finish(tracks, ids, cache, start)
                raise
            result = self._finish(tracks, ids, cache, start)
            if self.params.audio_analysis:
                frames_dir = write_frames(self._frames(ids, cache), self.out_dir, SEGMENT_CHANNELS)
                result.frames_dir = frames_dir
        return result

    # -- ids
    def _resolve_ids(self, tracks: pd.DataFrame, cache: FeatureCache) -> pd.DataFrame:
        """track_id → (spotify id, match score, status so far); searches rows without an id."""
        given = _given_ids(tracks)
        table = pd.DataFrame({"track_id": tracks["track_id"].to_numpy(), "sp_id": given.to_numpy(),
                              "score": np.nan, "status": None})
        bad = table["sp_id"].notna() & ~table["sp_id"].map(lambda s: bool(_SPOTIFY_ID.match(str(s))))
        table.loc[bad, ["sp_id", "status"]] = [None, "missing"]
        need = table.index[table["sp_id"].isna() & table["status"].isna()]
        if len(need):
            self._search(tracks.loc[need], table, cache)
        return table

    def _search(self, rows: pd.DataFrame, table: pd.DataFrame, cache: FeatureCache) -> None:
        cached = cache.get_many(NS_SEARCH, rows["track_id"])
        todo = [i for i in rows.index if rows.at[i, "track_id"] not in cached]
        for index in progress_bar(todo, desc="spotify search", unit="track", enabled=bool(todo)):
            row = rows.loc[index]
            artist, title = _first_text(row, ARTIST_COLUMNS), _first_text(row, TITLE_COLUMNS)
            if not (artist and title):
                entry = CacheEntry("missing")
            else:
                result = self.policy.call(
                    lambda: self.client.search(search_query(artist, title), limit=self.params.search_limit,
                                               type="track"), "/v1/search", self.cache_path)
                items = ((result or {}).get("tracks") or {}).get("items") or []
                sp_id, score = best_match(artist, title, items)
                ok = sp_id is not None and score >= self.params.search_min_similarity
                entry = CacheEntry("match" if ok else "no_match", json.dumps({"sp_id": sp_id}), score)
            cache.put_many(NS_SEARCH, [(row["track_id"], entry)])
            cached[row["track_id"]] = entry
        for index in rows.index:
            entry = cached[rows.at[index, "track_id"]]
            table.at[index, "score"] = entry.score if entry.score is not None else np.nan
            if entry.status == "match":
                table.at[index, "sp_id"] = entry.json()["sp_id"]
            else:
                table.at[index, "status"] = entry.status

    # -- audio features
    def _fetch_features(self, ids: pd.DataFrame, cache: FeatureCache) -> None:
        wanted = list(dict.fromkeys(ids["sp_id"].dropna()))
        have = cache.get_many(NS_FEATURES, wanted)
        todo = [i for i in wanted if i not in have]
        size = self.params.batch_size
        with progress_bar(total=len(todo), desc="spotify audio-features", unit="track", enabled=bool(todo)) as bar:
            for start in range(0, len(todo), size):
                batch = todo[start:start + size]
                entries = self.policy.call(lambda: self._features_batch(batch), "/v1/audio-features",
                                           self.cache_path)
                cache.put_many(NS_FEATURES, zip(batch, entries))
                self.fetched_ids.update(batch)
                bar.update(len(batch))
                bar.set_postfix(requests=self.policy.requests, refresh=False)

    def _features_batch(self, batch: list[str]) -> list[CacheEntry] | None:
        # `Spotify.audio_features` crashes on a malformed body; `_get` returns None, which we retry.
        body = self.client._get("audio-features", ids=",".join(batch))
        items = body.get("audio_features") if isinstance(body, dict) else None
        if not isinstance(items, list) or len(items) != len(batch):
            return None
        entries = []
        for sp_id, item in zip(batch, items):
            if not isinstance(item, dict):
                entries.append(CacheEntry("missing"))  # Spotify's `null`: no features for this id
                continue
            values = {API_TO_V1[k]: item.get(k) for k in API_TO_V1}
            entries.append(CacheEntry("ok", json.dumps(values)))
        return entries

    # -- audio analysis (frames)
    def _fetch_analysis(self, ids: pd.DataFrame, cache: FeatureCache) -> None:
        wanted = list(dict.fromkeys(ids["sp_id"].dropna()))
        have = cache.get_many(NS_ANALYSIS, wanted)
        todo = [i for i in wanted if i not in have]
        for sp_id in progress_bar(todo, desc="spotify audio-analysis", unit="track", enabled=bool(todo)):
            entry = self._analysis_entry(sp_id)
            cache.put_many(NS_ANALYSIS, [(sp_id, entry)])

    def _analysis_entry(self, sp_id: str) -> CacheEntry:
        try:
            body = self.policy.call(lambda: self.client._get(f"audio-analysis/{sp_id}"), "/v1/audio-analysis",
                                    self.cache_path)
        except SpotifyUnavailableError as err:
            if err.http_status in (400, 404):  # unknown or invalid id: no analysis for this track
                return CacheEntry("missing")
            raise
        segments = body.get("segments") if isinstance(body, dict) else None
        if not segments:
            return CacheEntry("missing")
        rows = [list(s.get("timbre") or [0.0] * 12)[:12] + list(s.get("pitches") or [0.0] * 12)[:12]
                + [s.get("loudness_start", 0.0), s.get("loudness_max", 0.0), s.get("duration", 0.0)]
                for s in segments]
        array = np.asarray(rows, dtype=np.float32)
        return CacheEntry("ok", array.tobytes(), float(array.shape[0]))

    def _frames(self, ids: pd.DataFrame, cache: FeatureCache) -> dict[str, np.ndarray]:
        entries = cache.get_many(NS_ANALYSIS, ids["sp_id"].dropna())
        frames = {}
        for track_id, sp_id in zip(ids["track_id"], ids["sp_id"]):
            entry = entries.get(sp_id) if isinstance(sp_id, str) else None
            if entry is not None and entry.status == "ok":
                frames[track_id] = np.frombuffer(entry.payload, dtype=np.float32).reshape(-1, len(SEGMENT_CHANNELS))
        return frames

    # -- table and summary
    def _finish(self, tracks: pd.DataFrame, ids: pd.DataFrame, cache: FeatureCache, start: float) -> FeatureResult:
        entries = cache.get_many(NS_FEATURES, ids["sp_id"].dropna())
        rows, statuses = {}, []
        for track_id, sp_id, status in zip(ids["track_id"], ids["sp_id"], ids["status"]):
            if status is None:
                entry = entries.get(sp_id)
                if entry is None:
                    status = "forbidden" if self.stopped == "forbidden" else "pending"
                elif entry.status != "ok":
                    status = "missing"
                else:
                    status = "fetched" if sp_id in self.fetched_ids else "cached"
                    rows[track_id] = entry.json()
            statuses.append(status)
        features = pd.DataFrame.from_dict(rows, orient="index", columns=AUDIO_FEATURE_COLUMNS).astype("float64")
        features.index.name = "track_id"
        status = pd.DataFrame({"track_id": ids["track_id"].to_numpy(), "spotify_id": ids["sp_id"].to_numpy(),
                               "match_score": ids["score"].to_numpy(dtype="float64"), "status": statuses})
        coverage = coverage_summary(
            status, "spotify", requests=self.policy.requests, retries=self.policy.retries,
            seconds=round(time.monotonic() - start, 2), stopped=self.stopped,
            searched=int(status["match_score"].notna().sum()), notice=SPOTIFY_NOTICE,
        )
        write_outputs(features, status, coverage, self.out_dir)
        return FeatureResult(features, status, coverage, self.out_dir)


def extract_spotify(tracks: pd.DataFrame, params: SpotifyParams, out_dir: Path,
                    client: Any | None = None) -> FeatureResult:
    """Spotify audio features for every track (ids given or found by search), through the cache."""
    return SpotifyExtractor(params, out_dir, client=client).run(tracks)
