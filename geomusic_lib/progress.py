"""Progress bars that the environment can switch off or redirect.

Interactively they are `tqdm.auto` bars (widgets in JupyterLab). The orchestrator runs each
kernel with `GEOMUSIC_PROGRESS=log`: the bars are then plain text on the kernel's stderr (its
log file, `runs/<name>/logs/<notebook>.log`), which the orchestrator's console follows, and
nothing is drawn into the executed notebook. `TQDM_DISABLE=1` hides them.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable

from tqdm import tqdm as plain_tqdm
from tqdm.auto import tqdm

PROGRESS_ENV = "GEOMUSIC_PROGRESS"


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A `tqdm.auto` bar; `enabled=False` hides it, and so does `TQDM_DISABLE=1` in the environment.

    tqdm reads `TQDM_*` variables only for arguments the caller leaves out, so `disable`
    is passed only to switch a bar off (or, in log mode, on).
    """
    if not enabled:
        kwargs["disable"] = True
    elif os.environ.get(PROGRESS_ENV) == "log":
        return plain_tqdm(iterable, file=sys.__stderr__, mininterval=1.0, ascii=True, dynamic_ncols=False,
                          ncols=100, disable=False, **kwargs)
    return tqdm(iterable, **kwargs)
