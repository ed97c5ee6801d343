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
# The browser and page fixtures (Playwright over Debian's Chromium).
# A PostgreSQL server for the store tests (started on loopback from the machine's server binaries).
pytest_plugins = ["tests.browser", "tests.postgres"]


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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default flagger fitted on the tiny corpus and saved (hashes and all), once per session."""
    from models import store
    from models.controllist import ANNEX_FILE
    from models.flagger import PARTS
    from tests import tiny
    from training.embeddings import EmbeddingCache
    from training.train import fit_candidate

    flagger = fit_candidate(
        PARTS, {"folds": 2}, tiny.frames(), {}, EmbeddingCache(PROJECT_DIR / "var" / "cache"), get_settings()
    )
    return store.save(flagger, tmp_path_factory.mktemp("tiny-model") / "model", annex=DATA_DIR / ANNEX_FILE)
