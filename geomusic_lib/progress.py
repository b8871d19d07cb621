"""Progress bars that the environment can switch off (the book build sets TQDM_DISABLE=1)."""
from __future__ import annotations

from typing import Any, Iterable

from tqdm.auto import tqdm


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """A `tqdm.auto` bar; `enabled=False` hides it, and so does `TQDM_DISABLE=1` in the environment.

    tqdm reads `TQDM_*` variables only for arguments the caller leaves out, so `disable`
    is passed only to switch a bar off.
    """
    if not enabled:
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)
