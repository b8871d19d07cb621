"""One process per run directory: `with RunLock(run_dir): ...` holds `run_dir/.lock`.

The lock is an exclusive `fcntl.flock` on `.lock`, so the kernel frees it when its holder
dies (even by `kill -9`); the file's content (pid, host, start time, token) names the holder
in the error a second process gets. Content left behind by a holder that died is a stale
lock: the next process takes it over and says so.

- Re-entrant within one process: nested `RunLock(same_dir)` blocks just count.
- Child processes (papermill kernels) started while the lock is held inherit the
  environment variable `GEOMUSIC_RUN_LOCK`, which carries the holder's token; a `RunLock`
  on the same run directory in such a child enters as a guest instead of being refused.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
ENV_VAR = "GEOMUSIC_RUN_LOCK"  # tokens of the locks held by an ancestor process, comma-separated


class RunLockError(RuntimeError):
    """Another live process holds the run directory."""


@dataclass
class _Held:
    fd: int | None  # None for a guest (the lock is held by an ancestor process)
    token: str
    depth: int = 1


_HELD: dict[Path, _Held] = {}
_GUARD = threading.Lock()


def _inherited_tokens() -> set[str]:
    return {t for t in os.environ.get(ENV_VAR, "").split(",") if t}


def _export_token(token: str, add: bool) -> None:
    tokens = _inherited_tokens()
    tokens = tokens | {token} if add else tokens - {token}
    if tokens:
        os.environ[ENV_VAR] = ",".join(sorted(tokens))
    else:
        os.environ.pop(ENV_VAR, None)


def read_lock_info(path: Path) -> dict[str, Any]:
    """The holder recorded in a lock file (empty dict when it was released or is unreadable)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


class RunLock:
    """Exclusive use of one run directory by one process (and the children it starts)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.note: str | None = None  # set when a stale lock was taken over

    @property
    def name(self) -> str:
        return self.run_dir.name

    def acquire(self) -> "RunLock":
        """Take the lock, or join it (same process, or a child of its holder); raise `RunLockError` if busy."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        key = self.path.resolve()
        with _GUARD:
            held = _HELD.get(key)
            if held is not None:
                held.depth += 1
                return self
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                info = read_lock_info(self.path)
                if info.get("token") and info["token"] in _inherited_tokens():
                    _HELD[key] = _Held(None, info["token"])
                    return self
                raise RunLockError(self._busy_message(info)) from None
            _HELD[key] = _Held(fd, self._claim(fd))
        return self

    def release(self) -> None:
        """Leave one level; the outermost release of the holder clears and unlocks the file."""
        key = self.path.resolve()
        with _GUARD:
            held = _HELD.get(key)
            if held is None:
                return
            held.depth -= 1
            if held.depth > 0:
                return
            del _HELD[key]
            if held.fd is None:  # a guest: the ancestor keeps the lock
                return
            _export_token(held.token, add=False)
            try:
                os.ftruncate(held.fd, 0)
            finally:
                fcntl.flock(held.fd, fcntl.LOCK_UN)
                os.close(held.fd)

    def child_env(self) -> dict[str, str]:
        """Environment entries that let a child process enter this lock (already in `os.environ` while held)."""
        held = _HELD.get(self.path.resolve())
        if held is None:
            raise RunLockError(f"{self.path}: run '{self.name}' is not locked by this process.")
        return {ENV_VAR: ",".join(sorted(_inherited_tokens() | {held.token}))}

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _claim(self, fd: int) -> str:
        """Write our pid, host, start time and token into the locked file; note a stale holder."""
        previous = read_lock_info(self.path)
        if previous.get("pid") is not None:
            self.note = (f"{self.path}: took over the lock of run '{self.name}' left by pid {previous['pid']} "
                         f"(started {previous.get('started', '?')}), which is no longer running.")
            logger.warning(self.note)
        token = uuid.uuid4().hex
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.now().astimezone().isoformat(timespec="seconds"), "token": token}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        os.fsync(fd)
        _export_token(token, add=True)
        return token

    def _busy_message(self, info: dict[str, Any]) -> str:
        pid, host = info.get("pid", "?"), info.get("host")
        where = f" on {host}" if host and host != socket.gethostname() else ""
        return (f"run '{self.name}' is in use by pid {pid}{where} (started {info.get('started', '?')}); "
                f"wait for it to finish, or give this run another run_name (lock: {self.path}).")
