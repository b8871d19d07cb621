"""A deterministic point to kill a run at, for the kill -9 tests: with `GEOMUSIC_HOLD_AFTER=<model>:<epoch>`
the trainer stops after writing that epoch's checkpoint and history, writes `held` beside them, and
waits to be killed; `<model>/<folder>:<epoch>` (e.g. `fcnn/bag_1:2`) holds in that folder only, such
as one member of a bag. Unset (always, outside tests), it does nothing."""
from __future__ import annotations

import os
import time
from pathlib import Path

HOLD_ENV = "GEOMUSIC_HOLD_AFTER"
HELD_FILE = "held"


def hold_if_asked(model: str, epoch: int, folder: Path) -> None:
    """Wait forever after `model`'s `epoch` when the environment asks for it (a test then kills the run)."""
    if os.environ.get(HOLD_ENV) not in (f"{model}:{epoch}", f"{model}/{Path(folder).name}:{epoch}"):
        return
    (Path(folder) / HELD_FILE).write_text(f"{os.getpid()}\n", encoding="utf-8")
    while True:
        time.sleep(1)
