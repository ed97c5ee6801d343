"""Property-based run over the OpenAPI schema: generated requests never get a 5xx, answers match the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from models import store
from models.controllist import ANNEX_FILE
from models.flagger import PARTS
from models.settings import PROJECT_DIR, Settings, get_settings
from serving import keys
from serving.app import create_app
from tests import tiny
from training.embeddings import EmbeddingCache
from training.train import fit_candidate

DATA_DIR = PROJECT_DIR / "data"
ROOT = Path(__import__("tempfile").mkdtemp(prefix="dualscreen-schema-"))


def _app() -> object:
    flagger = fit_candidate(
        PARTS, {"folds": 2}, tiny.frames(), {}, EmbeddingCache(PROJECT_DIR / "var" / "cache"), get_settings()
    )
    model = store.save(flagger, ROOT / "model", annex=DATA_DIR / ANNEX_FILE)
    config = Settings(
        model_uri=str(model),
        database_url=f"sqlite:///{ROOT / 'schema.db'}",
        model_poll_seconds=0,
        rate_limit="1000000/minute",
    )
    return create_app(config)


app = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def admin() -> Iterator[str]:
    with TestClient(app) as client:  # runs the lifespan: database and model
        yield keys.create(client.app.state.engine, "admin", "schemathesis")[1]  # type: ignore[attr-defined]


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_schema_no_server_errors(case: schemathesis.Case, admin: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {admin}"})
