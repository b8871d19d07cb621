"""Request cache: SQLite in WAL mode, one transaction per batch, keyed by (namespace, id).

A row is committed as soon as its response arrives, so `kill -9` loses at most the batch in
flight; the primary key makes a rerun overwrite, never duplicate.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    payload BLOB,
    score REAL,
    PRIMARY KEY (namespace, key)
)
"""
_CHUNK = 900  # stay below SQLite's bound-parameter limit


@dataclass(frozen=True)
class CacheEntry:
    status: str
    payload: bytes | str | None = None
    score: float | None = None

    def json(self) -> Any:
        return None if self.payload is None else json.loads(self.payload)


class FeatureCache:
    """A small key/value store of API responses and decoded audio, safe against being killed."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "FeatureCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put_many(self, namespace: str, rows: Iterable[tuple[str, CacheEntry]]) -> None:
        """Store a batch in one transaction (all or nothing)."""
        values = [(namespace, key, e.status, e.payload, e.score) for key, e in rows]
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO entries (namespace, key, status, payload, score) VALUES (?, ?, ?, ?, ?)",
                values,
            )

    def get_many(self, namespace: str, keys: Iterable[str]) -> dict[str, CacheEntry]:
        """Entries for the keys that are cached; absent keys are simply missing from the dict."""
        found: dict[str, CacheEntry] = {}
        for chunk in _chunks(list(dict.fromkeys(keys)), _CHUNK):
            marks = ",".join("?" * len(chunk))
            cursor = self._conn.execute(
                f"SELECT key, status, payload, score FROM entries WHERE namespace = ? AND key IN ({marks})",
                [namespace, *chunk],
            )
            for key, status, payload, score in cursor:
                found[key] = CacheEntry(status, payload, score)
        return found

    def count(self, namespace: str) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM entries WHERE namespace = ?", [namespace]).fetchone()[0])


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
