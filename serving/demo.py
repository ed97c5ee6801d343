"""The demo that `dualscreen up` prepares on first run: an officer account and a seeded review queue."""

from __future__ import annotations

import secrets
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from models.settings import PROJECT_DIR, Settings
from serving import db, schemas, scoring, users
from serving.app import score_and_record
from serving.observe import Metrics

DEMO_OFFICER = "demo.officer"
PASSWORD_FILE = PROJECT_DIR / "var" / "demo-officer.txt"
SAMPLES = Path("samples") / "declarations.csv"


def officer(settings: Settings) -> tuple[str, str | None]:
    """Create the demo officer once, with a random password kept in var/demo-officer.txt (mode 0600)."""
    engine = db.connect(settings.database_url)
    if users.get(engine, DEMO_OFFICER) is not None:
        return DEMO_OFFICER, None
    password = secrets.token_urlsafe(12)
    users.add(engine, DEMO_OFFICER, password)
    PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    PASSWORD_FILE.write_text(f"{DEMO_OFFICER} {password}\n", encoding="utf-8")
    PASSWORD_FILE.chmod(0o600)
    return DEMO_OFFICER, password


def queue(settings: Settings) -> int:
    """Score the sample declarations into an empty review queue; returns how many were flagged."""
    engine = db.connect(settings.database_url)
    with engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(db.review_items)).scalar():
            return 0
    frame = pd.read_csv(settings.data_dir / SAMPLES, dtype=str, keep_default_na=False)
    items = [
        schemas.Item(id=str(r["id"]), description=str(r["description"]), hs_code=str(r["hs_code"]) or None)
        for r in frame.to_dict("records")
    ]
    served = scoring.load(settings)
    results = score_and_record(engine, served, "demo-seed", "demo", items, False, Metrics())
    return sum(r.flagged for r in results)
