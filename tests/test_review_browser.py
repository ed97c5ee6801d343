"""The review workspace in a real headless Chromium: sign in, queue, item, keyboard decision, history, export."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from models.controllist import ControlList
from models.settings import PROJECT_DIR, Settings
from serving import keys, review, users
from serving.app import create_app
from tests.browser import serve

ARTIFACTS = PROJECT_DIR / "var" / "artifacts"
PASSWORD = "correct horse battery"
DESCRIPTION = "THIO\u200bDIGLYCOL 99% 200 KG DRUMS, CAS 111-48-8"


def test_browser_officer_reviews_a_flagged_item(
    page: Page, tiny_model: Path, tmp_path: Path, controls: ControlList
) -> None:
    settings = Settings(model_uri=str(tiny_model), database_url=f"sqlite:///{tmp_path / 'b.db'}", model_poll_seconds=0)
    app = create_app(settings)
    with serve(app) as base:
        engine = app.state.engine
        users.add(engine, "demo.officer", PASSWORD)
        secret = keys.create(engine, "screening", "gateway")[1]
        scored = httpx.post(
            f"{base}/v1/score",
            json={"items": [{"id": "BL-1", "description": DESCRIPTION, "hs_code": "382499"}]},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert scored.json()["results"][0]["flagged"] is True

        page.goto(f"{base}/review")
        expect(page).to_have_url(f"{base}/review/login")
        page.fill("input[name=username]", "demo.officer")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login button[type=submit]")
        expect(page.locator("#count-open")).to_have_text("1")

        page.click("a.item-link")
        expect(page.locator("#description mark.token").first).to_be_visible()
        expect(page.locator("#description .invisible")).to_have_text("U+200B")
        (item,) = review.queue(engine, review.Filters())[0]
        cited = review.item(engine, item["id"])["explanation"]["provisions"][0]["code"]
        expect(page.locator("blockquote.provision-text").first).to_have_text(controls.get(cited).text)
        expect(page.locator("#hs-check")).to_contain_text("does not fit")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-item.png"), full_page=True)

        page.keyboard.press("c")  # the shortcut for "controlled"
        expect(page.locator(".flash")).to_contain_text("controlled recorded")

        page.goto(f"{base}/review/history")
        row = page.locator("#audit tr.event", has_text="decision")
        expect(row).to_contain_text("demo.officer")
        expect(row).to_contain_text("controlled")

        frame, _ = review.export(engine)
    assert list(frame["description"]) == [DESCRIPTION]
    assert list(frame["label"]) == [1] and list(frame["decided_by"]) == ["demo.officer"]
    assert (ARTIFACTS / "review-item.png").stat().st_size > 10_000
