"""The review workspace's logic: the queue, decisions (one wins), the two-officer rule, the export.

A decision updates the item only if it still has the version the officer saw, in the same
transaction as its audit event, so of two officers deciding one item at once exactly one wins
and the other is told who did. A watch-listed substance judged "not controlled" waits for a second
officer's confirmation before it becomes a negative training label.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, and_, func, select

from serving import audit
from serving.db import decisions, now, review_items
from serving.users import User

DECISIONS = {"controlled": "decided", "not_controlled": "decided", "referred": "referred"}
STATUSES = ("open", "decided", "referred")
EXPORT_COLUMNS = (
    "description", "hs_code", "label", "category", "provision", "decided_by", "decided_at", "model_version",
)  # fmt: skip


class NotFound(LookupError):
    """No review item with that id."""


class Conflict(RuntimeError):
    """Someone else changed the item first; the message says who and what."""


@dataclass(frozen=True)
class Filters:
    """What the queue shows."""

    status: str = "open"
    category: str = ""
    since: date | None = None
    until: date | None = None
    sort: str = "newest"
    page: int = 1
    per_page: int = 25


def _where(filters: Filters) -> Any:
    clauses = [review_items.c.status == filters.status]
    if filters.category:
        clauses.append(review_items.c.category == filters.category)
    if filters.since:
        clauses.append(review_items.c.created_at >= datetime.combine(filters.since, datetime.min.time()))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), datetime.min.time())
        clauses.append(review_items.c.created_at < end)
    return and_(*clauses)


def queue(engine: Engine, filters: Filters) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
    """One page of items, the number matching the filters, and the count per status."""
    order = (
        (review_items.c.score.desc(), review_items.c.id.desc())
        if filters.sort == "score"
        else (review_items.c.created_at.desc(), review_items.c.id.desc())
    )
    columns = [c for c in review_items.c if c.name != "explanation"]
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(review_items).where(_where(filters))).scalar() or 0)
        rows = conn.execute(
            select(*columns)
            .where(_where(filters))
            .order_by(*order)
            .limit(filters.per_page)
            .offset((filters.page - 1) * filters.per_page)
        ).mappings()
        items = [dict(r) for r in rows]
        grouped = conn.execute(select(review_items.c.status, func.count()).group_by(review_items.c.status))
        counts: dict[str, int] = {str(status): int(n) for status, n in grouped.all()}
    return items, total, {s: int(counts.get(s, 0)) for s in STATUSES}


def item(engine: Engine, item_id: int) -> dict[str, Any]:
    """A review item with its explanation and its decisions, oldest first."""
    with engine.connect() as conn:
        row = conn.execute(select(review_items).where(review_items.c.id == item_id)).mappings().first()
        if row is None:
            raise NotFound(f"no review item {item_id}")
        found = conn.execute(
            select(decisions).where(decisions.c.review_item_id == item_id).order_by(decisions.c.id)
        ).mappings()
        made = [dict(d) for d in found]
    return {**dict(row), "explanation": json.loads(row["explanation"]), "decisions": made}


def next_open(engine: Engine, after: int) -> int | None:
    """The next open item to review after deciding ``after`` (highest score first)."""
    with engine.connect() as conn:
        found = conn.execute(
            select(review_items.c.id)
            .where(review_items.c.status == "open", review_items.c.id != after)
            .order_by(review_items.c.score.desc(), review_items.c.id.desc())
            .limit(1)
        ).scalar()
    return int(found) if found is not None else None


def decide(
    engine: Engine, item_id: int, seen_version: int, decision: str, comment: str, category: str, user: User
) -> dict[str, Any]:
    """Record ``user``'s decision if nobody changed the item since ``seen_version``; audit it."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}")
    comment = comment.strip()[:2000]
    with engine.begin() as conn:
        # The update comes first: it takes the write lock, so the check and the change are one step.
        changed = conn.execute(
            review_items.update()
            .where(
                review_items.c.id == item_id,
                review_items.c.version == seen_version,
                review_items.c.status != "decided",
            )
            .values(status=DECISIONS[decision], version=review_items.c.version + 1)
        ).rowcount
        row = conn.execute(select(review_items).where(review_items.c.id == item_id)).mappings().first()
        if row is None:
            raise NotFound(f"no review item {item_id}")
        if not changed:
            last = conn.execute(
                select(decisions.c.decided_by, decisions.c.decision, decisions.c.decided_at)
                .where(decisions.c.review_item_id == item_id)
                .order_by(decisions.c.id.desc())
                .limit(1)
            ).first()
            who = f"{last.decided_by} recorded '{last.decision}'" if last else "someone changed it"
            raise Conflict(f"item {item_id} changed while you were reviewing it: {who}; reload to see it")
        hits = json.loads(row["explanation"]).get("hits") or []
        final_category = category or (row["category"] if decision != "not_controlled" else "none")
        values = {
            "review_item_id": item_id,
            "decision": decision,
            "comment": comment,
            "category": final_category,
            "decided_by": user.username,
            "decided_at": now(),
            "model_version": row["model_version"],
            "needs_confirmation": decision == "not_controlled" and bool(hits),
        }
        decision_id = conn.execute(decisions.insert().values(**values)).inserted_primary_key
        assert decision_id is not None
        audit.append(
            conn,
            user.username,
            "decision",
            item_id,
            {
                "decision": decision,
                "category": final_category,
                "comment": comment,
                "model_version": row["model_version"],
                "score": row["score"],
                "needs_confirmation": values["needs_confirmation"],
            },
        )
    return {**values, "id": int(decision_id[0])}


def confirm(engine: Engine, item_id: int, user: User) -> None:
    """A second officer confirms a 'not controlled' decision on a watch-listed substance."""
    with engine.begin() as conn:
        pending = (
            conn.execute(
                select(decisions)
                .where(
                    decisions.c.review_item_id == item_id,
                    decisions.c.needs_confirmation.is_(True),
                    decisions.c.confirmed_by.is_(None),
                )
                .order_by(decisions.c.id.desc())
            )
            .mappings()
            .first()
        )
        if pending is None:
            raise Conflict(f"item {item_id} has no decision waiting for confirmation")
        if pending["decided_by"] == user.username:
            raise Conflict("the officer who decided cannot confirm their own decision; a second officer must")
        done = conn.execute(
            decisions.update()
            .where(decisions.c.id == pending["id"], decisions.c.confirmed_by.is_(None))
            .values(confirmed_by=user.username, confirmed_at=now())
        ).rowcount
        if not done:
            raise Conflict(f"item {item_id} was confirmed by someone else meanwhile")
        audit.append(conn, user.username, "confirmation", item_id, {"decision_id": int(pending["id"])})


def export(engine: Engine) -> tuple[pd.DataFrame, Counter[str]]:
    """Decided items as labelled rows for retraining, and what was held back and why."""
    held: Counter[str] = Counter()
    rows = []
    with engine.connect() as conn:
        found = conn.execute(
            select(decisions, review_items.c.description, review_items.c.hs_code, review_items.c.explanation)
            .join(review_items, review_items.c.id == decisions.c.review_item_id)
            .order_by(decisions.c.id)
        ).mappings()
        latest: dict[int, dict[str, Any]] = {}
        for record in found:
            latest[int(record["review_item_id"])] = dict(record)
    for row in latest.values():
        if row["decision"] == "referred":
            held["referred to an expert"] += 1
            continue
        if row["needs_confirmation"] and not row["confirmed_by"]:
            held["waiting for a second officer"] += 1
            continue
        provisions = json.loads(row["explanation"]).get("provisions") or []
        controlled = row["decision"] == "controlled"
        rows.append(
            {
                "description": row["description"],
                "hs_code": row["hs_code"] or "",
                "label": int(controlled),
                "category": row["category"] if controlled else "none",
                "provision": provisions[0]["code"] if controlled and provisions else "",
                "decided_by": row["decided_by"] + (f"+{row['confirmed_by']}" if row["confirmed_by"] else ""),
                "decided_at": row["decided_at"].isoformat(),
                "model_version": row["model_version"],
            }
        )
    return pd.DataFrame(rows, columns=list(EXPORT_COLUMNS)), held


def dashboard(engine: Engine, days: int = 30) -> dict[str, Any]:
    """Flags per day and category, decisions, and the precision of flags by category as officers judged them."""
    since = now() - timedelta(days=days)
    with engine.connect() as conn:
        flags = conn.execute(
            select(review_items.c.created_at, review_items.c.category).where(review_items.c.created_at >= since)
        ).all()
        judged = conn.execute(
            select(review_items.c.category, decisions.c.decision).join(
                review_items, review_items.c.id == decisions.c.review_item_id
            )
        ).all()
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    for created, category in flags:
        per_day[created.date().isoformat()][category] += 1
    decided: Counter[str] = Counter(d for _, d in judged)
    by_category: dict[str, Counter[str]] = defaultdict(Counter)
    for category, decision in judged:
        by_category[category][decision] += 1
    precision = {
        c: (n["controlled"] / (n["controlled"] + n["not_controlled"]), n["controlled"] + n["not_controlled"])
        for c, n in sorted(by_category.items())
        if n["controlled"] + n["not_controlled"]
    }
    return {"per_day": dict(sorted(per_day.items())), "decisions": dict(decided), "precision": precision}
