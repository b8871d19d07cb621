"""Progress bars that the environment can switch off or redirect.

Interactively they are `tqdm.auto` bars (widgets in JupyterLab). The orchestrator runs each
kernel with `GEOMUSIC_PROGRESS=log` and `GEOMUSIC_PROGRESS_FILE=<its log>`: the bars are then
plain text appended to that file (`runs/<name>/logs/<notebook>.log`), which the orchestrator's
console follows, and nothing is drawn into the executed notebook. (The kernel's stderr is no
place for them: ipykernel forwards what reaches file descriptor 2 into the notebook.)
`TQDM_DISABLE=1` hides them.
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import IO, Any, Iterable

from tqdm import tqdm as plain_tqdm
from tqdm.auto import tqdm

PROGRESS_ENV = "GEOMUSIC_PROGRESS"
PROGRESS_FILE_ENV = "GEOMUSIC_PROGRESS_FILE"


@lru_cache(maxsize=None)
def _log_file(path: str) -> IO[str]:
    """One line-buffered append handle per log file for the life of the kernel."""
    return open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - kept open on purpose


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A `tqdm.auto` bar; `enabled=False` hides it, and so does `TQDM_DISABLE=1` in the environment.

    tqdm reads `TQDM_*` variables only for arguments the caller leaves out, so `disable`
    is passed only to switch a bar off (or, in log mode, on).
    """
    if not enabled:
        kwargs["disable"] = True
    elif os.environ.get(PROGRESS_ENV) == "log":
        path = os.environ.get(PROGRESS_FILE_ENV)
        return plain_tqdm(iterable, file=_log_file(path) if path else sys.__stderr__, mininterval=1.0, ascii=True, dynamic_ncols=False,
                          ncols=100, disable=False, **kwargs)
    return tqdm(iterable, **kwargs)
