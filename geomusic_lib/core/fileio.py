"""Atomic file writes: a uniquely named temporary file in the same folder, then a rename.

Readers never see half a file, and two processes writing the same path never collide on a
shared temporary name. Every writer in geomusic goes through these helpers.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd


def umask_mode(mode: int = 0o666) -> int:
    """`mode` less the process's umask: what `open()` would give a new file (0644 under umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A unique temporary path beside `path`, renamed onto it when the block succeeds:
    `with atomic_path(out) as tmp: frame.to_parquet(tmp)`. Two writers never share a name.
    The file gets the mode the umask gives (the temporary file's private 0600 would stay on rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (flushed to disk before the rename)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, sort_keys: bool = False) -> Path:
    """Pretty JSON with a final newline; `default=str` so paths and dates serialise."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys, default=str) + "\n")


def atomic_write_with(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Let `write(tmp_path)` produce the file (e.g. `torch.save`), then rename it onto `path`."""
    path = Path(path)
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def atomic_write_parquet(frame: pd.DataFrame, path: str | Path, index: bool | None = None) -> Path:
    return atomic_write_with(path, lambda tmp: frame.to_parquet(tmp, index=index))


def atomic_write_csv(frame: pd.DataFrame, path: str | Path, index: bool = False) -> Path:
    return atomic_write_with(path, lambda tmp: frame.to_csv(tmp, index=index))
