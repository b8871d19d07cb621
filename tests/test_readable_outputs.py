"""Files a run writes get the mode the umask gives (0644 under 022), so colleagues on a shared server can read
them: the atomic writer's private temporary file (0600) no longer keeps its mode on rename."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from geomusic_lib.core import atomic_write_csv, atomic_write_json, atomic_write_parquet, atomic_write_text
from geomusic_lib.core.fileio import atomic_write_with, umask_mode


@pytest.fixture
def restore_umask():
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


def _write_all(folder: Path) -> list[Path]:
    frame = pd.DataFrame({"a": [1, 2]})
    return [atomic_write_text(folder / "a.txt", "x"), atomic_write_json(folder / "b.json", {"k": 1}),
            atomic_write_csv(frame, folder / "c.csv"), atomic_write_parquet(frame, folder / "d.parquet"),
            atomic_write_with(folder / "e.pt", lambda tmp: torch.save({"w": torch.ones(2)}, tmp))]


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_every_atomic_write_gets_the_mode_the_umask_gives(tmp_path, restore_umask, mask, mode):
    os.umask(mask)
    assert umask_mode() == mode
    written = _write_all(tmp_path)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {p.name: oct(mode) for p in written}
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
