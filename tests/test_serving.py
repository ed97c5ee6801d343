"""The scoring API: the v1 contract field by field, explanations, auth, limits, readiness, swap, audit."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy import text as sql
from typer.testing import CliRunner

from dualscreen.cli import app as cli
from models import store
from models.controllist import ANNEX_FILE, ControlList
from models.lexicon import CATEGORIES
from models.settings import Settings, get_settings
from serving import db, keys
from serving.app import create_app
from serving.limits import Admission, Refused

PRECURSOR = "THIODIGLYCOL 99% 200 KG DRUMS"
REACTOR = "HASTELLOY C-276 REACTOR 2000 L, 2 PCS"
ORDINARY = "COTTON T-SHIRTS, 10 DRUMS"


@pytest.fixture(scope="module")
def model_dir(tiny_model: Path) -> Path:
    return tiny_model


def _settings(model_dir: Path, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model_uri": str(model_dir),
        "database_url": f"sqlite:///{tmp_path / 'serving.db'}",
        "model_poll_seconds": 0,
        **overrides,
    }
    return Settings(**values)


class Api:
    """A running app, its settings and one key per role."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        engine = client.app.state.engine  # type: ignore[attr-defined]
        self.engine = engine
        self.keys = {role: keys.create(engine, role, f"test-{role}")[1] for role in keys.ROLES}

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def score(self, items: list[dict[str, Any]], explain: bool = True, role: str = "screening") -> Any:
        return self.client.post("/v1/score", json={"items": items, "explain": explain}, headers=self.headers(role))


@pytest.fixture
def api(model_dir: Path, tmp_path: Path) -> Iterator[Api]:
    settings = _settings(model_dir, tmp_path)
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings)


# ----- the contract --------------------------------------------------------------------------------


def test_score_contract_fields(api: Api, model_dir: Path, controls: ControlList) -> None:
    response = api.score([{"id": "A1", "description": PRECURSOR, "hs_code": "293070"}])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"request_id", "model", "results"}
    assert response.headers["x-request-id"] == body["request_id"]
    assert body["model"] == {"name": "model", "version": "local", "alias": "", "sha256": store.digest(model_dir)}
    (result,) = body["results"]
    assert result["id"] == "A1"
    assert 0.0 <= result["score"] <= 1.0
    assert result["flagged"] is True and result["score"] >= result["threshold"]
    assert result["threshold"] == pytest.approx(store.load(model_dir).threshold_, abs=1e-6)
    assert result["category"] == "chemical"
    assert set(result["categories"]) <= set(CATEGORIES)
    assert sum(result["categories"].values()) == pytest.approx(1.0, abs=1e-4)
    assert result["provisions"], "a flagged item cites provisions"
    for provision in result["provisions"]:
        assert set(provision) == {"code", "regime", "text", "similarity", "limits"}
        assert provision["limits"]["status"] in ("met", "failed", "unknown")
        assert provision["text"] == controls.get(provision["code"]).text
        assert provision["regime"] == controls.get(provision["code"]).regime
    hit = next(h for h in result["hits"] if h["cas"] == "111-48-8")
    assert hit["provision"] == "1C350.1" and hit["cwc_schedule"] == "2B.13"
    assert PRECURSOR[hit["start"] : hit["end"]].upper() == "THIODIGLYCOL"
    assert result["hs_check"] == {"declared": "293070", "consistent": True, "note": result["hs_check"]["note"]}
    assert result["notes"] == []
    for token in result["tokens"]:
        assert PRECURSOR[token["start"] : token["end"]] == token["text"]


def test_score_explains_a_quantity_against_the_provision_limits(api: Api) -> None:
    body = api.score([{"description": "GLASS LINED REACTOR 20 L, JACKETED, FOR KILO LAB"}]).json()
    checked = {p["code"]: p["limits"] for p in body["results"][0]["provisions"]}
    assert "2B350.a" in checked, f"the reactor provision is cited (got {sorted(checked)})"
    assert checked["2B350.a"]["status"] == "failed"
    assert checked["2B350.a"]["limits"] == ["volume > 0,1 m3"]
    assert all(limits["note"] for limits in checked.values())


def test_score_generates_missing_ids(api: Api) -> None:
    body = api.score([{"description": PRECURSOR}, {"description": ORDINARY}], explain=False).json()
    ids = [r["id"] for r in body["results"]]
    assert all(ids) and len(set(ids)) == 2


def test_score_without_explain_returns_only_scores(api: Api) -> None:
    (result,) = api.score([{"id": "x", "description": ORDINARY}], explain=False).json()["results"]
    assert set(result) == {"id", "score", "flagged", "threshold", "category"}
    assert result["flagged"] is False and result["category"] == "none"


def test_score_results_keep_request_order(api: Api) -> None:
    items = [{"id": f"r{i}", "description": d} for i, d in enumerate([ORDINARY, PRECURSOR, REACTOR, ORDINARY])]
    results = api.score(items, explain=False).json()["results"]
    assert [r["id"] for r in results] == ["r0", "r1", "r2", "r3"]
    assert [r["flagged"] for r in results] == [False, True, True, False]


def test_score_spans_point_into_the_description_as_sent(api: Api) -> None:
    sent = "THIO\u200bDIGLYCOL  99%\u00a0200 KG DRUMS, cas 111-48-8"
    (result,) = api.score([{"id": "z", "description": sent}]).json()["results"]
    assert any("invisible" in note for note in result["notes"])
    for span in result["hits"] + result["tokens"]:
        assert 0 <= span["start"] < span["end"] <= len(sent)
    assert any(sent[h["start"] : h["end"]] == "111-48-8" for h in result["hits"])


def test_score_removing_top_tokens_lowers_the_score(api: Api) -> None:
    candidates = ["C-276 TANK", "HASTELLOY MIXING TANK 2000 L", "NICKEL ALLOY TANK 2000 L", "GLASS LINED TANK"]
    checked = 0
    for text in candidates:
        (result,) = api.score([{"id": "r", "description": text}]).json()["results"]
        top = [t for t in sorted(result["tokens"], key=lambda t: -t["weight"])[:2] if t["weight"] > 0]
        if not (1e-4 < result["score"] < 1 - 1e-4) or not top:
            continue  # a saturated score cannot move; nothing pushed it up
        kept = "".join(ch for i, ch in enumerate(text) if not any(t["start"] <= i < t["end"] for t in top))
        (reduced,) = api.score([{"id": "r", "description": kept.strip() or "-"}], explain=False).json()["results"]
        assert reduced["score"] < result["score"], text
        checked += 1
    assert checked >= 1


def test_score_hs_check_catches_a_misdeclared_precursor(api: Api) -> None:
    (result,) = api.score([{"id": "m", "description": PRECURSOR, "hs_code": "3824.99"}]).json()["results"]
    check = result["hs_check"]
    assert check["declared"] == "382499" and check["consistent"] is False
    assert "2930.70" in check["note"]


def test_score_hs_check_without_a_code_says_so(api: Api) -> None:
    (result,) = api.score([{"id": "n", "description": PRECURSOR}]).json()["results"]
    assert result["hs_check"] == {"declared": None, "consistent": None, "note": "no HS code declared"}


# ----- auth ----------------------------------------------------------------------------------------

ROUTES = [
    ("POST", "/v1/score", "screening"),
    ("GET", "/v1/model", "screening"),
    ("GET", "/v2/models/model", "screening"),
    ("POST", "/v2/models/model/infer", "screening"),
    ("GET", "/v1/review/items", "officer"),
    ("POST", "/v1/admin/reload", "admin"),
    ("GET", "/v1/admin/keys", "admin"),
]
BODIES = {
    "/v1/score": {"items": [{"description": ORDINARY}]},
    "/v2/models/model/infer": {
        "inputs": [{"name": "description", "shape": [1], "datatype": "BYTES", "data": [ORDINARY]}]
    },
}


@pytest.mark.parametrize(("method", "path", "needs"), ROUTES)
def test_auth_matrix(api: Api, method: str, path: str, needs: str) -> None:
    def call(headers: dict[str, str]) -> int:
        return api.client.request(method, path, json=BODIES.get(path), headers=headers).status_code

    assert call({}) == 401
    assert call({"Authorization": "Bearer ds_000000000000_wrong"}) == 401
    assert call({"Authorization": "Basic dXNlcjpwYXNz"}) == 401
    for role in keys.ROLES:
        expected = 200 if keys.ROLES.index(role) >= keys.ROLES.index(needs) else 403
        assert call(api.headers(role)) == expected, role


def test_auth_revoked_key_is_refused(api: Api) -> None:
    record, secret = keys.create(api.engine, "screening", "short-lived")
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/v1/model", headers=headers).status_code == 200
    assert api.client.delete(f"/v1/admin/keys/{record.id}", headers=api.headers("admin")).status_code == 200
    response = api.client.get("/v1/model", headers=headers)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_auth_keys_are_stored_only_as_hashes(api: Api) -> None:
    with api.engine.connect() as conn:
        stored = json.dumps([dict(r) for r in conn.execute(select(db.api_keys)).mappings()], default=str)
    for secret in api.keys.values():
        assert secret.split("_", 2)[2] not in stored


# ----- limits --------------------------------------------------------------------------------------


def test_limit_body_over_1mib_is_413_before_reading(api: Api) -> None:
    big = json.dumps({"items": [{"description": "X" * 1999}] * 600})
    response = api.client.post(
        "/v1/score", content=big, headers={**api.headers("screening"), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "over the limit" in response.json()["detail"]


def test_limit_streamed_body_over_1mib_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"items": ['
        for _ in range(700):
            yield json.dumps({"description": "Y" * 1999}).encode() + b","
        yield b'{"description": "Z"}]}'

    response = api.client.post(
        "/v1/score", content=chunks(), headers={**api.headers("screening"), "Content-Type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([{"description": "A"}] * 257, "items"),
        ([{"description": "A" * 2001}], "items[0].description"),
        ([{"description": ""}], "items[0].description"),
        ([{"description": ORDINARY}, {"description": "   "}], "items[1].description"),
        ([{"description": ORDINARY, "hs_code": "abc"}], "items[0].hs_code"),
        ([], "items"),
    ],
)
def test_limit_invalid_items_are_422_naming_the_field(api: Api, items: list[dict[str, str]], field: str) -> None:
    response = api.score(items)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert field in [e["field"] for e in detail]
    assert "AAAAAAAAAA" not in response.text, "errors never echo the input"


def test_limit_rate_is_429_with_retry_after(model_dir: Path, tmp_path: Path) -> None:
    with TestClient(create_app(_settings(model_dir, tmp_path, rate_limit="3/minute"))) as client:
        secret = keys.create(client.app.state.engine, "screening", "burst")[1]  # type: ignore[attr-defined]
        statuses = [client.get("/v1/model", headers={"Authorization": f"Bearer {secret}"}) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    assert int(statuses[-1].headers["retry-after"]) >= 1
    assert "rate limit" in statuses[-1].json()["detail"]


@pytest.mark.anyio
async def test_limit_admission_refuses_beyond_the_queue() -> None:
    admission = Admission(slots=1, queue=0)
    async with admission.slot():
        with pytest.raises(Refused) as refused:
            async with admission.slot():
                pass
    assert refused.value.status == 503 and refused.value.retry_after == 1
    async with admission.slot():  # the slot is free again
        assert admission.busy == 1


def test_limit_overload_answers_503_with_retry_after(model_dir: Path, tmp_path: Path) -> None:
    app = create_app(_settings(model_dir, tmp_path, scoring_slots=1, queue_limit=0))
    with TestClient(app) as client:
        secret = keys.create(app.state.engine, "screening", "load")[1]
        app.state.admission._semaphore._value = 0  # every slot taken, as under load
        response = client.post(
            "/v1/score", json={"items": [{"description": ORDINARY}]}, headers={"Authorization": f"Bearer {secret}"}
        )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def test_errors_never_leak_a_traceback(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("serving.scoring.score", broken)
    with TestClient(api.client.app, raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/score", json={"items": [{"description": ORDINARY}]}, headers=api.headers("screening")
        )
    assert response.status_code == 500
    assert "secret internals" not in response.text and "Traceback" not in response.text
    assert response.json()["request_id"]


# ----- readiness, swap, audit, logs, metrics ---------------------------------------------------------


def test_readiness_false_without_a_verified_model(model_dir: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(model_dir, tampered)
    with (tampered / "stacker.npz").open("ab") as handle:
        handle.write(b"\0")
    with TestClient(create_app(_settings(tampered, tmp_path))) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "IntegrityError" in ready.json()["reasons"][0]
        assert client.get("/v2/health/ready").status_code == 503
        secret = keys.create(client.app.state.engine, "screening", "k")[1]  # type: ignore[attr-defined]
        response = client.post(
            "/v1/score", json={"items": [{"description": ORDINARY}]}, headers={"Authorization": f"Bearer {secret}"}
        )
        assert response.status_code == 503


def test_readiness_true_with_a_verified_model(api: Api, model_dir: Path) -> None:
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model"]["sha256"] == store.digest(model_dir)


def test_hot_swap_serves_the_new_model_without_restart(api: Api, model_dir: Path, tmp_path: Path) -> None:
    live = Path(api.settings.model_uri)
    old = store.digest(model_dir)
    before = api.client.app.state.served  # type: ignore[attr-defined]
    # A different model at the same location: the same weights with another decision threshold.
    replacement = store.load(model_dir)
    replacement.threshold_ = 0.9
    swapped = tmp_path / "replacement"
    store.save(replacement, swapped, annex=Path(api.settings.data_dir) / ANNEX_FILE)
    response = api.client.app.state  # type: ignore[attr-defined]
    response.settings = api.settings.model_copy(update={"model_uri": str(swapped)})
    reloaded = api.client.post("/v1/admin/reload", headers=api.headers("admin"))
    assert reloaded.status_code == 200
    assert reloaded.json()["sha256"] == store.digest(swapped) != old
    body = api.score([{"description": ORDINARY}], explain=False).json()
    assert body["model"]["sha256"] == store.digest(swapped)
    assert body["results"][0]["threshold"] == pytest.approx(0.9)
    assert before.info.sha256 == old, "a request holding the old model still sees the old model"
    assert live == model_dir


def test_hot_swap_keeps_the_old_model_when_the_new_one_fails(api: Api, tmp_path: Path) -> None:
    state = api.client.app.state  # type: ignore[attr-defined]
    old = state.served.info.sha256
    state.settings = api.settings.model_copy(update={"model_uri": str(tmp_path / "missing")})
    response = api.client.post("/v1/admin/reload", headers=api.headers("admin"))
    assert response.status_code == 409
    assert api.score([{"description": ORDINARY}], explain=False).json()["model"]["sha256"] == old


def test_audit_records_every_item_and_queues_the_flagged(api: Api) -> None:
    items = [{"id": "p", "description": PRECURSOR, "hs_code": "382499"}, {"id": "o", "description": ORDINARY}]
    api.score(items, explain=False)
    with api.engine.connect() as conn:
        audit = pd.DataFrame(conn.execute(select(db.score_audit)).mappings().all())
        queue = pd.DataFrame(conn.execute(select(db.review_items)).mappings().all())
    assert sorted(audit["item_id"]) == ["o", "p"]
    assert PRECURSOR not in audit.to_json() and "description" not in audit.columns
    assert list(queue["item_id"]) == ["p"]
    explanation = json.loads(queue["explanation"].iloc[0])
    assert explanation["hits"] and explanation["hs_check"]["consistent"] is False
    listed = api.client.get("/v1/review/items", headers=api.headers("officer")).json()
    assert listed["total"] == 1 and listed["items"][0]["description"] == PRECURSOR


def test_logs_are_json_without_text_or_keys(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    from serving.observe import configure_logging

    configure_logging()
    api.score([{"id": "l", "description": PRECURSOR}])
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    request = next(line for line in lines if line.get("route") == "/v1/score")
    assert request["status"] == 200 and request["key_id"] and request["model_version"] == "local"
    assert request["items"] == 1 and request["flagged"] == 1 and request["ms"] > 0
    text = json.dumps(lines)
    assert "THIODIGLYCOL" not in text and api.keys["screening"] not in text


def test_metrics_count_requests_flags_and_model(api: Api) -> None:
    api.score([{"description": PRECURSOR}, {"description": ORDINARY}], explain=False)
    text = api.client.get("/metrics").text
    assert 'dualscreen_requests_total{route="/v1/score",status="200"} 1.0' in text
    assert 'dualscreen_flags_total{category="chemical"} 1.0' in text
    assert "dualscreen_descriptions_total 2.0" in text
    assert 'dualscreen_model_info{sha256="' in text
    assert "dualscreen_request_seconds_bucket" in text


# ----- Open Inference Protocol ------------------------------------------------------------------------


def test_v2_infer_matches_v1_scores(api: Api) -> None:
    texts = [PRECURSOR, ORDINARY, REACTOR]
    v1 = api.score([{"description": t} for t in texts], explain=False).json()["results"]
    body = {"id": "req-1", "inputs": [{"name": "description", "shape": [3], "datatype": "BYTES", "data": texts}]}
    response = api.client.post("/v2/models/model/infer", json=body, headers=api.headers("screening"))
    assert response.status_code == 200
    out = {o["name"]: o for o in response.json()["outputs"]}
    assert response.json()["id"] == "req-1"
    assert out["score"]["data"] == [r["score"] for r in v1] and out["score"]["datatype"] == "FP32"
    assert out["flagged"]["data"] == [r["flagged"] for r in v1]
    assert out["category"]["shape"] == [3]


def test_v2_health_and_metadata(api: Api) -> None:
    assert api.client.get("/v2/health/live").json() == {"live": True}
    assert api.client.get("/v2/health/ready").json() == {"ready": True}
    assert api.client.get("/v2/models/model/ready").status_code == 200
    meta = api.client.get("/v2/models/model", headers=api.headers("screening")).json()
    assert meta["inputs"] == [{"name": "description", "datatype": "BYTES", "shape": [-1]}]
    assert api.client.get("/v2/models/other", headers=api.headers("screening")).status_code == 404


def test_v2_shape_mismatch_is_422(api: Api) -> None:
    body = {"inputs": [{"name": "description", "shape": [2], "datatype": "BYTES", "data": [ORDINARY]}]}
    response = api.client.post("/v2/models/model/infer", json=body, headers=api.headers("screening"))
    assert response.status_code == 422 and "shape" in response.json()["error"]


# ----- the command line ---------------------------------------------------------------------------------


def test_keys_cli_prints_the_key_last_and_it_works(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUALSCREEN_DATABASE_URL", api.settings.database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "--role", "officer", "--name", "desk-7"])
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1].split()[-1]
    assert api.client.get("/v1/review/items", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    listed = runner.invoke(cli, ["keys", "list"])
    assert "desk-7" in listed.output and secret.split("_", 2)[2] not in listed.output
    key_id = secret.split("_")[1]
    assert runner.invoke(cli, ["keys", "revoke", key_id]).exit_code == 0
    assert api.client.get("/v1/review/items", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    bad = runner.invoke(cli, ["keys", "create", "--role", "root"])
    assert bad.exit_code == 2 and "role must be one of" in bad.output


def test_limit_messages_say_the_fix(api: Api) -> None:
    blank = api.score([{"description": " \t "}]).json()["detail"][0]["message"]
    assert "blank" in blank
    many = api.score([{"description": "A"}] * 257).json()["detail"][0]["message"]
    assert "split" in many


def test_hot_swap_by_alias_polling(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses
    import time

    from serving import scoring

    base = scoring.load(_settings(model_dir, tmp_path))
    versions = {
        v: dataclasses.replace(base, info=base.info.model_copy(update={"version": v, "alias": "champion"}))
        for v in ("1", "2")
    }
    champion = {"version": "1"}
    monkeypatch.setattr(scoring, "load", lambda settings, uri=None: versions[champion["version"]])
    monkeypatch.setattr("models.registry.alias_version", lambda name, alias: champion["version"])
    settings = _settings(model_dir, tmp_path, model_uri="models:/dualscreen@champion", model_poll_seconds=0.05)
    with TestClient(create_app(settings)) as client:
        secret = keys.create(client.app.state.engine, "screening", "poll")[1]  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {secret}"}
        assert client.get("/v1/model", headers=headers).json()["version"] == "1"
        champion["version"] = "2"  # someone promoted version 2
        deadline = time.monotonic() + 5
        while client.get("/v1/model", headers=headers).json()["version"] != "2" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/v1/model", headers=headers).json()["version"] == "2"
        assert "dualscreen_model_swaps_total 1.0" in client.get("/metrics").text


def test_database_upgrade_adds_new_columns_and_keeps_rows(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # a score_audit table as an earlier release created it
        conn.execute(
            "CREATE TABLE score_audit (id INTEGER PRIMARY KEY, request_id VARCHAR(36) NOT NULL,"
            " key_id VARCHAR(16) NOT NULL, item_id VARCHAR(100) NOT NULL, created_at DATETIME NOT NULL,"
            " model_version VARCHAR(64) NOT NULL, model_sha256 VARCHAR(64) NOT NULL, score FLOAT NOT NULL,"
            " flagged BOOLEAN NOT NULL, category VARCHAR(32) NOT NULL, description_sha256 VARCHAR(64) NOT NULL)"
        )
        conn.execute("INSERT INTO score_audit VALUES (1, 'r', 'k', 'i', '2026-01-01', '1', 's', 0.5, 0, 'none', 'h')")
    engine = db.connect(f"sqlite:///{path}")
    with engine.connect() as conn:
        rows = conn.execute(select(db.score_audit)).mappings().all()
    assert len(rows) == 1 and rows[0]["oov_rate"] is None and rows[0]["item_id"] == "i"
    assert db.upgrade(engine) == [], "a second upgrade has nothing to add"
    with engine.connect() as conn:  # and the database is now under the migrations
        assert conn.execute(sql("SELECT version_num FROM alembic_version")).scalar() == "0001"


def test_service_runs_on_postgresql(model_dir: Path, tmp_path: Path, postgres_url: str) -> None:
    settings = _settings(model_dir, tmp_path, database_url=postgres_url)
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        assert engine.dialect.name == "postgresql"
        assert client.get("/readyz").status_code == 200
        screening = {"Authorization": f"Bearer {keys.create(engine, 'screening', 'gw')[1]}"}
        officer = {"Authorization": f"Bearer {keys.create(engine, 'officer', 'desk')[1]}"}
        items = [{"id": "p", "description": PRECURSOR}, {"id": "o", "description": ORDINARY}]
        body = client.post("/v1/score", json={"items": items}, headers=screening).json()
        assert [r["flagged"] for r in body["results"]] == [True, False]
        queue = client.get("/v1/review/items", headers=officer).json()
        assert queue["total"] == 1 and queue["items"][0]["item_id"] == "p"
        with engine.connect() as conn:
            assert len(conn.execute(select(db.score_audit)).all()) == 2


def test_serve_with_two_workers_shares_the_rate_limit(model_dir: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import httpx

    from tests.servers import free_port, wait_ready

    port = free_port()
    url = f"sqlite:///{tmp_path / 'workers.db'}"
    engine = db.connect(url)
    secret = keys.create(engine, "screening", "gateway")[1]
    env = {
        **os.environ,
        "DUALSCREEN_MODEL_URI": str(model_dir),
        "DUALSCREEN_DATABASE_URL": url,
        "DUALSCREEN_RATE_LIMIT": "10/minute",
        "DUALSCREEN_MODEL_POLL_SECONDS": "0",
        "HF_HUB_OFFLINE": "1",
    }
    command = [sys.executable, "-m", "dualscreen", "serve", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz", server, 120, "the server")
        headers = {"Authorization": f"Bearer {secret}", "Connection": "close"}  # new connection each time
        statuses = [httpx.get(f"{base}/v1/model", headers=headers).status_code for _ in range(14)]
        scrapes = [httpx.get(f"{base}/metrics", headers={"Connection": "close"}).text for _ in range(4)]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert statuses.count(200) == 10 and statuses[10:] == [429] * 4
    for text in scrapes:  # whichever worker answers, the counts are the service's
        assert 'dualscreen_requests_total{route="/v1/model",status="200"} 10.0' in text
        assert 'dualscreen_requests_total{route="/v1/model",status="429"} 4.0' in text
