"""Shared fixtures: paths to the small real data copies in tests/fixtures/; caches go to a temporary folder."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory: pytest.TempPathFactory):
    """`GEOMUSIC_CACHE` points at a temporary folder for the whole session (subprocesses and notebook
    kernels inherit it), so tests never read or write the user's ~/.cache/geomusic."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GEOMUSIC_CACHE", str(tmp_path_factory.mktemp("geomusic_cache")))
        yield


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """In-process torch runs on one thread, as the trainer's `threads: auto` gives small models: two
    pytest workers on two cores each spinning two OpenMP threads made LSTM backward passes 20-40x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def mirage_v1() -> Path:
    return FIXTURES / "mirage" / "mirage_v1_pilot.csv"


@pytest.fixture
def mirage_legacy() -> Path:
    return FIXTURES / "mirage" / "mirage_legacy_pilot.csv"


def pytest_collection_modifyitems(session, config, items) -> None:
    """Files with end-to-end (`slow`) tests first, test order kept: under `make test`
    (`-n 2 --dist loadfile`) the long files start at once and the unit tests fill the gaps."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: most end-to-end tests first
