from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from models.controllist import ControlList
from models.controllist import load as load_controllist
from models.settings import PROJECT_DIR, get_settings
from models.watchlist import Watchlist
from models.watchlist import load as load_watchlist

DATA_DIR = PROJECT_DIR / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def controls() -> ControlList:
    return load_controllist(DATA_DIR)


@pytest.fixture(scope="session")
def watchlist() -> Watchlist:
    return load_watchlist(DATA_DIR)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test on a throw-away tracking store, database and corpus directory."""
    monkeypatch.setenv("DUALSCREEN_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DUALSCREEN_DATABASE_URL", f"sqlite:///{tmp_path / 'dualscreen.db'}")
    monkeypatch.setenv("DUALSCREEN_CORPUS_DIR", str(tmp_path / "corpus"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
