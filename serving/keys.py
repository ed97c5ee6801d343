"""API keys: created once, shown once, stored as a hash, checked in constant time, revocable.

A key reads ``ds_<id>_<secret>``: the id finds the row, the secret (256 random bits) is compared by
its SHA-256. A fast hash is right here: the secret is random, not a password, so there is nothing
to guess offline. Roles nest: ``screening`` scores, ``officer`` also reviews, ``admin`` also
manages models and keys.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from serving.db import api_keys, now

ROLES = ("screening", "officer", "admin")
PREFIX = "ds"


@dataclass(frozen=True)
class ApiKey:
    """A key's public record (never the secret)."""

    id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, role: str) -> bool:
        """Whether this key's role includes ``role``."""
        return ROLES.index(self.role) >= ROLES.index(role)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create(engine: Engine, role: str, name: str) -> tuple[ApiKey, str]:
    """A new key with ``role``; returns its record and the full key, which is not stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    if not name.strip() or len(name) > 100:
        raise ValueError("name must be 1 to 100 characters, e.g. --name customs-gateway")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    created = now()
    with engine.begin() as conn:
        conn.execute(
            api_keys.insert().values(
                id=key_id, name=name.strip(), role=role, secret_sha256=_digest(secret), created_at=created
            )
        )
    return ApiKey(key_id, name.strip(), role, created, None), f"{PREFIX}_{key_id}_{secret}"


def verify(engine: Engine, presented: str) -> ApiKey | None:
    """The key's record if ``presented`` is a live key, else None."""
    prefix, _, rest = presented.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or len(key_id) != 12 or not secret:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
    if row is None or row["revoked_at"] is not None:
        return None
    if not hmac.compare_digest(row["secret_sha256"], _digest(secret)):
        return None
    return ApiKey(row["id"], row["name"], row["role"], row["created_at"], None)


def revoke(engine: Engine, key_id: str) -> bool:
    """Revoke a key by id; False when there is no live key with that id."""
    with engine.begin() as conn:
        result = conn.execute(
            api_keys.update().where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now())
        )
    return bool(result.rowcount)


def listing(engine: Engine) -> list[ApiKey]:
    """Every key's public record, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at.desc())).mappings().all()
    return [ApiKey(r["id"], r["name"], r["role"], r["created_at"], r["revoked_at"]) for r in rows]
