"""The append-only audit log: every decision, confirmation and sign-in event, chained by SHA-256.

Each row's hash covers its own fields and the previous row's hash, so editing or deleting any row
breaks the chain from there on; ``verify`` (``dualscreen audit verify``) finds the first break.
Appends update the one-row chain head first: that takes the write lock (SQLite) or the row lock
(PostgreSQL) before the previous hash is read, so concurrent writers cannot fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from serving.db import audit_head, audit_log, now

GENESIS = "0" * 64


def _canonical(seq: int, at: datetime, actor: str, action: str, item_id: int | None, details: str) -> bytes:
    stamp = at.isoformat(timespec="microseconds")
    return json.dumps([seq, stamp, actor, action, item_id, details], separators=(",", ":")).encode()


def _hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def append(conn: Connection, actor: str, action: str, item_id: int | None, details: dict[str, Any]) -> int:
    """Append one event inside the caller's transaction; returns its sequence number."""
    claimed = conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=audit_head.c.seq + 1))
    if not claimed.rowcount:
        conn.execute(audit_head.insert().values(id=1, seq=1, hash=GENESIS))
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
    seq, prev = int(head.seq), str(head.hash)
    stamp = now().replace(tzinfo=None)  # stored naive UTC: every database gives it back the same way
    text = json.dumps(details, sort_keys=True, ensure_ascii=False)
    digest = _hash(prev, _canonical(seq, stamp, actor, action, item_id, text))
    conn.execute(
        audit_log.insert().values(
            seq=seq, at=stamp, actor=actor, action=action, item_id=item_id, details=text, prev_hash=prev, hash=digest
        )
    )
    conn.execute(audit_head.update().where(audit_head.c.id == 1).values(hash=digest))
    return seq


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking the chain."""

    ok: bool
    rows: int
    first_bad: int | None
    reason: str


def verify(engine: Engine) -> Verdict:
    """Recompute the chain; report the first row whose hash, link or sequence does not hold."""
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).mappings()
        for row in rows:
            count += 1
            seq = int(row["seq"])
            at = row["at"].replace(tzinfo=None)
            if seq != expected_seq:
                return Verdict(False, count, expected_seq, f"row {expected_seq} is missing (found {seq} next)")
            if row["prev_hash"] != expected_prev:
                return Verdict(False, count, seq, f"row {seq} does not link to the row before it")
            body = _canonical(seq, at, row["actor"], row["action"], row["item_id"], row["details"])
            if _hash(row["prev_hash"], body) != row["hash"]:
                return Verdict(False, count, seq, f"row {seq} was changed after it was written")
            expected_prev = row["hash"]
            expected_seq += 1
        head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
    if head is not None and (int(head.seq) != count or head.hash != expected_prev):
        return Verdict(False, count, count + 1, f"the log ends at row {count} but {head.seq} were written")
    return Verdict(True, count, None, f"{count} rows, chain intact")


def history(engine: Engine, item_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Audit events, newest first (of one review item when ``item_id`` is given)."""
    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if item_id is not None:
        query = query.where(audit_log.c.item_id == item_id)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [{**dict(r), "details": json.loads(r["details"])} for r in rows]
