"""The review workspace: queue filters, decisions, the audit chain, the export, the two-officer rule, sessions."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from dualscreen.cli import app as cli
from models.controllist import ControlList
from models.settings import Settings, get_settings
from serving import audit, db, keys, review, users
from serving.app import create_app

PASSWORD = "correct horse battery"
PROVISION = {"code": "1C350.1", "regime": "Australia Group", "text": "Thiodiglycol (CAS 111-48-8);", "similarity": 0.8}
HITS = [{"substance": "Thiodiglycol", "cas": "111-48-8", "provision": "1C350.1", "start": 0, "end": 12}]


def add_item(engine: Engine, **values: Any) -> int:
    """A flagged item in the queue, as the scoring API would leave it."""
    row: dict[str, Any] = {
        "request_id": "r",
        "key_id": "k",
        "item_id": "A1",
        "created_at": db.now(),
        "model_version": "7",
        "score": 0.9,
        "threshold": 0.4,
        "category": "chemical",
        "description": "THIODIGLYCOL 99% 200 KG DRUMS",
        "hs_code": "293070",
        "explanation": json.dumps({"hits": [], "provisions": [PROVISION], "tokens": []}),
        "status": "open",
        "version": 0,
        **values,
    }
    with engine.begin() as conn:
        key = conn.execute(db.review_items.insert().values(**row)).inserted_primary_key
    assert key is not None
    return int(key[0])


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    """Every store test runs on SQLite and on a real PostgreSQL server."""
    if request.param == "postgresql":
        return db.connect(request.getfixturevalue("postgres_url"))
    return db.connect(f"sqlite:///{tmp_path / 'review.db'}")


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def officers(engine: Engine) -> tuple[users.User, users.User]:
    return users.add(engine, "a.smith", PASSWORD), users.add(engine, "b.jones", PASSWORD)


# ----- the queue -----------------------------------------------------------------------------------


def test_queue_filters_by_status_category_and_date(engine: Engine) -> None:
    today = db.now()
    add_item(engine, category="chemical")
    add_item(engine, category="nuclear")
    add_item(engine, category="chemical", status="referred")
    add_item(engine, category="chemical", created_at=today - timedelta(days=10))
    items, total, counts = review.queue(engine, review.Filters(category="chemical"))
    assert total == 2 and {i["category"] for i in items} == {"chemical"}
    assert counts == {"open": 3, "decided": 0, "referred": 1}
    recent = review.Filters(since=(today - timedelta(days=1)).date())
    assert review.queue(engine, recent)[1] == 2
    old = review.Filters(until=(today - timedelta(days=5)).date())
    assert review.queue(engine, old)[1] == 1
    assert review.queue(engine, review.Filters(status="referred"))[1] == 1


def test_queue_sorts_and_paginates(engine: Engine) -> None:
    for i in range(30):
        add_item(engine, score=i / 100, created_at=db.now() - timedelta(minutes=i))
    first, total, _ = review.queue(engine, review.Filters(sort="score"))
    assert total == 30 and len(first) == 25 and first[0]["score"] == pytest.approx(0.29)
    second = review.queue(engine, review.Filters(sort="score", page=2))[0]
    assert len(second) == 5 and second[-1]["score"] == pytest.approx(0.0)
    newest = review.queue(engine, review.Filters(sort="newest"))[0]
    assert newest[0]["score"] == pytest.approx(0.0)


# ----- decisions, concurrency, two officers, export ---------------------------------------------------


def test_decide_concurrently_one_wins_the_other_is_told(engine: Engine, officers: tuple[users.User, ...]) -> None:
    item_id = add_item(engine)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def attempt(user: users.User, decision: str) -> None:
        barrier.wait()
        try:
            review.decide(engine, item_id, 0, decision, "", "", user)
            outcomes.append("won")
        except review.Conflict as err:
            outcomes.append(str(err))

    threads = [
        threading.Thread(target=attempt, args=(officers[0], "controlled")),
        threading.Thread(target=attempt, args=(officers[1], "not_controlled")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes)[-1] == "won" and outcomes.count("won") == 1
    loser = next(o for o in outcomes if o != "won")
    assert "changed while you were reviewing" in loser and ("a.smith" in loser or "b.jones" in loser)
    assert len(review.item(engine, item_id)["decisions"]) == 1


def test_decide_on_a_stale_version_is_refused(engine: Engine, officers: tuple[users.User, ...]) -> None:
    item_id = add_item(engine)
    review.decide(engine, item_id, 0, "referred", "ask the chemist", "", officers[0])
    with pytest.raises(review.Conflict, match=r"a\.smith recorded 'referred'"):
        review.decide(engine, item_id, 0, "controlled", "", "", officers[1])
    review.decide(engine, item_id, 1, "controlled", "expert agrees", "", officers[1])  # the expert's turn
    assert review.item(engine, item_id)["status"] == "decided"


def test_export_contents(engine: Engine, officers: tuple[users.User, ...]) -> None:
    controlled = add_item(engine, description="GLASS LINED REACTOR 3000 L", hs_code="841989")
    ordinary = add_item(engine, description="ENAMEL STOCK POT 24 CM", category="chemical")
    referred = add_item(engine, description="VACUUM PUMP PTFE LINED")
    review.decide(engine, controlled, 0, "controlled", "", "", officers[0])
    review.decide(engine, ordinary, 0, "not_controlled", "cookware", "", officers[0])
    review.decide(engine, referred, 0, "referred", "", "", officers[1])
    frame, held = review.export(engine)
    assert list(frame.columns) == list(review.EXPORT_COLUMNS)
    rows = frame.set_index("description")
    assert rows.loc["GLASS LINED REACTOR 3000 L", "label"] == 1
    assert rows.loc["GLASS LINED REACTOR 3000 L", "category"] == "chemical"
    assert rows.loc["GLASS LINED REACTOR 3000 L", "provision"] == "1C350.1"
    assert rows.loc["GLASS LINED REACTOR 3000 L", "hs_code"] == "841989"
    assert rows.loc["ENAMEL STOCK POT 24 CM", "label"] == 0
    assert rows.loc["ENAMEL STOCK POT 24 CM", "category"] == "none"
    assert rows.loc["ENAMEL STOCK POT 24 CM", "decided_by"] == "a.smith"
    assert (frame["model_version"] == "7").all()
    assert "VACUUM PUMP PTFE LINED" not in rows.index and held["referred to an expert"] == 1


def test_two_officer_rule_for_watch_listed_negatives(engine: Engine, officers: tuple[users.User, ...]) -> None:
    explanation = json.dumps({"hits": HITS, "provisions": [PROVISION], "tokens": []})
    item_id = add_item(engine, explanation=explanation)
    review.decide(engine, item_id, 0, "not_controlled", "sample for a lab", "", officers[0])
    frame, held = review.export(engine)
    assert frame.empty and held["waiting for a second officer"] == 1
    with pytest.raises(review.Conflict, match="cannot confirm their own"):
        review.confirm(engine, item_id, officers[0])
    review.confirm(engine, item_id, officers[1])
    frame, _ = review.export(engine)
    assert list(frame["label"]) == [0] and list(frame["decided_by"]) == ["a.smith+b.jones"]


# ----- the audit chain ----------------------------------------------------------------------------------


def test_audit_chain_detects_a_changed_row(engine: Engine, officers: tuple[users.User, ...]) -> None:
    for _ in range(3):
        review.decide(engine, add_item(engine), 0, "controlled", "", "", officers[0])
    assert audit.verify(engine).ok and audit.verify(engine).rows == 3
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_log SET details = replace(details, 'controlled', 'not_controlled') WHERE seq = 2")
        )
    verdict = audit.verify(engine)
    assert not verdict.ok and verdict.first_bad == 2 and "changed" in verdict.reason


def test_audit_chain_detects_a_deleted_row(engine: Engine, officers: tuple[users.User, ...]) -> None:
    for _ in range(3):
        review.decide(engine, add_item(engine), 0, "controlled", "", "", officers[0])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    verdict = audit.verify(engine)
    assert not verdict.ok and verdict.first_bad == 2 and "row 2 is missing" in verdict.reason


def test_audit_chain_detects_a_deleted_last_row(engine: Engine, officers: tuple[users.User, ...]) -> None:
    for _ in range(3):
        review.decide(engine, add_item(engine), 0, "controlled", "", "", officers[0])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    verdict = audit.verify(engine)
    assert not verdict.ok and "ends at row 2 but 3 were written" in verdict.reason


def test_audit_verify_cli_fails_on_a_broken_chain(
    engine: Engine, officers: tuple[users.User, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUALSCREEN_DATABASE_URL", _url(engine))
    get_settings.cache_clear()
    review.decide(engine, add_item(engine), 0, "controlled", "", "", officers[0])
    runner = CliRunner()
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone.else'"))
    broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1 and "row 1 was changed" in broken.output


# ----- accounts ---------------------------------------------------------------------------------------


def test_users_lock_out_after_repeated_failures(engine: Engine) -> None:
    users.add(engine, "c.lee", PASSWORD)
    outcomes = [users.authenticate(engine, "c.lee", "wrong password!")[1] for _ in range(users.FREE_FAILURES)]
    assert outcomes[-1] == "locked now"
    user, why = users.authenticate(engine, "c.lee", PASSWORD)
    assert user is None and why == "locked"


def test_users_add_cli_reads_the_password_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUALSCREEN_DATABASE_URL", f"sqlite:///{tmp_path / 'u.db'}")
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["users", "add", "d.kim", "--role", "officer"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    engine = db.connect(f"sqlite:///{tmp_path / 'u.db'}")
    assert users.authenticate(engine, "d.kim", PASSWORD)[0] is not None
    with engine.connect() as conn:
        stored = conn.execute(select(db.users.c.password_hash)).scalar()
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored
    short = CliRunner().invoke(cli, ["users", "add", "e.fox"], input="short\n")
    assert short.exit_code == 2 and "at least 12" in short.output


# ----- the web pages ----------------------------------------------------------------------------------


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "every form carries a CSRF token"
    return found.group(1)


class Web:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.engine: Engine = client.app.state.engine  # type: ignore[attr-defined]

    def login(self, name: str = "a.smith", password: str = PASSWORD) -> Any:
        token = _csrf(self.client.get("/review/login").text)
        form = {"username": name, "password": password, "csrf": token}
        return self.client.post("/review/login", data=form, follow_redirects=False)


@pytest.fixture
def web(tiny_model: Path, tmp_path: Path) -> Iterator[Web]:
    settings = Settings(
        model_uri=str(tiny_model), database_url=f"sqlite:///{tmp_path / 'web.db'}", model_poll_seconds=0
    )
    with TestClient(create_app(settings)) as client:
        users.add(client.app.state.engine, "a.smith", PASSWORD)  # type: ignore[attr-defined]
        users.add(client.app.state.engine, "b.jones", PASSWORD)  # type: ignore[attr-defined]
        yield Web(client)


def test_web_pages_need_a_signed_in_officer(web: Web) -> None:
    for path in ("/review", "/review/items/1", "/review/history", "/review/dashboard"):
        response = web.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/review/login"


def test_web_screening_keys_cannot_read_the_queue(web: Web) -> None:
    secret = keys.create(web.engine, "screening", "gateway")[1]
    headers = {"Authorization": f"Bearer {secret}"}
    assert web.client.get("/review", headers=headers, follow_redirects=False).status_code == 303
    assert web.client.get("/v1/review/items", headers=headers).status_code == 403


def test_web_login_refuses_a_wrong_password_and_audits_it(web: Web) -> None:
    response = web.login(password="not the password")
    assert response.status_code == 401 and "wrong name or password" in response.text
    events = audit.history(web.engine)
    assert events[0]["action"] == "sign-in refused" and "not the password" not in json.dumps(events, default=str)


def test_web_forms_without_the_csrf_token_are_refused(web: Web) -> None:
    form = {"username": "a.smith", "password": PASSWORD, "csrf": "forged"}
    assert web.client.post("/review/login", data=form).status_code == 403
    assert web.login().status_code == 303
    item_id = add_item(web.engine)
    bad = web.client.post(f"/review/items/{item_id}/decide", data={"decision": "controlled", "version": 0})
    assert bad.status_code == 403 and "reload the page" in bad.json()["detail"]
    assert review.item(web.engine, item_id)["status"] == "open"


def test_web_session_expires(tiny_model: Path, tmp_path: Path) -> None:
    settings = Settings(
        model_uri=str(tiny_model),
        database_url=f"sqlite:///{tmp_path / 's.db'}",
        model_poll_seconds=0,
        session_seconds=1,
    )
    with TestClient(create_app(settings)) as client:
        users.add(client.app.state.engine, "a.smith", PASSWORD)  # type: ignore[attr-defined]
        web = Web(client)
        assert web.login().status_code == 303
        assert client.get("/review", follow_redirects=False).status_code == 200
        time.sleep(1.2)
        response = client.get("/review", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/review/login"


def test_web_decision_is_recorded_as_the_signed_in_officer(web: Web) -> None:
    item_id = add_item(web.engine)
    web.login("b.jones")
    page = web.client.get(f"/review/items/{item_id}").text
    form = {"decision": "controlled", "version": 0, "csrf": _csrf(page), "decided_by": "a.smith", "comment": "ok"}
    response = web.client.post(f"/review/items/{item_id}/decide", data=form, follow_redirects=False)
    assert response.status_code == 303
    (decision,) = review.item(web.engine, item_id)["decisions"]
    assert decision["decided_by"] == "b.jones"
    history = web.client.get("/review/history").text
    assert "b.jones" in history and "controlled" in history


def test_web_item_page_shows_the_reasons(web: Web, controls: ControlList) -> None:
    secret = keys.create(web.engine, "screening", "gateway")[1]
    sent = "THIO\u200bDIGLYCOL 99% 200 KG DRUMS"
    web.client.post(
        "/v1/score",
        json={"items": [{"id": "L1", "description": sent, "hs_code": "382499"}]},
        headers={"Authorization": f"Bearer {secret}"},
    )
    web.login()
    queue = web.client.get("/review").text
    item_id = int(re.search(r'class="item-link" href="/review/items/(\d+)"', queue).group(1))  # type: ignore[union-attr]
    html = web.client.get(f"/review/items/{item_id}").text
    explanation = review.item(web.engine, item_id)["explanation"]
    assert '<mark class="token' in html
    assert "U+200B" in html and "ZERO WIDTH SPACE" in html
    code = explanation["provisions"][0]["code"]
    verbatim = controls.get(code).text
    from html import escape

    assert f'<blockquote class="provision-text">{escape(verbatim)}</blockquote>' in html
    assert "111-48-8" in html and "does not fit" in html


def test_web_dashboard_draws_charts(web: Web) -> None:
    review.decide(web.engine, add_item(web.engine), 0, "controlled", "", "", users.User(1, "a.smith", "officer"))
    add_item(web.engine, category="nuclear")
    web.login()
    html = web.client.get("/review/dashboard").text
    assert '<svg id="flags-chart"' in html and html.count("<rect") >= 3
    assert 'id="precision-chart"' in html and "100% of 1" in html


def test_feedback_export_cli(
    engine: Engine, officers: tuple[users.User, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUALSCREEN_DATABASE_URL", _url(engine))
    get_settings.cache_clear()
    review.decide(engine, add_item(engine), 0, "controlled", "", "", officers[0])
    out = tmp_path / "feedback.csv"
    result = CliRunner().invoke(cli, ["feedback", "export", "-o", str(out)])
    assert result.exit_code == 0 and "1 labelled rows" in result.output
    assert out.read_text().splitlines()[0] == ",".join(review.EXPORT_COLUMNS)


def test_decided_at_is_recent(engine: Engine, officers: tuple[users.User, ...]) -> None:
    item_id = add_item(engine)
    review.decide(engine, item_id, 0, "controlled", "", "", officers[0])
    decided = review.item(engine, item_id)["decisions"][0]["decided_at"]
    stamp = decided if decided.tzinfo else decided.replace(tzinfo=UTC)
    assert datetime.now(UTC) - stamp < timedelta(minutes=1)
    assert stamp.date() <= date.today() + timedelta(days=1)


def test_demo_seeds_an_officer_and_the_queue(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from serving import demo

    monkeypatch.setattr(demo, "PASSWORD_FILE", tmp_path / "demo-officer.txt")
    settings = Settings(model_uri=str(tiny_model), database_url=f"sqlite:///{tmp_path / 'demo.db'}")
    name, password = demo.officer(settings)
    assert password and (tmp_path / "demo-officer.txt").read_text().split() == [name, password]
    assert (tmp_path / "demo-officer.txt").stat().st_mode & 0o077 == 0
    assert demo.officer(settings) == (name, None), "a second run keeps the account"
    flagged = demo.queue(settings)
    engine = db.connect(settings.database_url)
    assert flagged >= 1 and review.queue(engine, review.Filters())[1] == flagged
    assert demo.queue(settings) == 0, "a second run does not seed again"
    assert users.authenticate(engine, name, password)[0] is not None


def test_rate_limit_is_shared_through_the_database(engine: Engine) -> None:
    from serving.limits import RateLimiter

    now = [1_000.0]
    first = RateLimiter(3, 60.0, engine, clock=lambda: now[0])
    second = RateLimiter(3, 60.0, engine, clock=lambda: now[0])  # another worker, same database
    assert [first.take("k1"), second.take("k1"), first.take("k1")] == [0.0, 0.0, 0.0]
    assert second.take("k1") == pytest.approx(20.0)
    assert first.take("k2") == 0.0, "keys are limited separately"
    now[0] += 20.0
    assert second.take("k1") == 0.0 and first.take("k1") > 0


def test_schema_is_created_by_the_migrations(engine: Engine) -> None:
    from sqlalchemy import inspect

    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
    assert set(db.metadata.tables) <= set(inspect(engine).get_table_names())
    db.migrate(engine)  # at head: nothing to do, nothing fails
