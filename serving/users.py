"""Officer accounts: Argon2id password hashes, and a lock-out that grows with repeated failures."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from serving.db import now, users

ROLES = ("officer", "admin")
MIN_PASSWORD = 12
FREE_FAILURES = 5  # failures allowed before the lock-out starts
BASE_LOCK = timedelta(seconds=30)  # doubles with each further failure, up to MAX_LOCK
MAX_LOCK = timedelta(minutes=30)

_hasher = PasswordHasher()
# A hash to check against when the user does not exist, so the answer takes the same time.
_DUMMY = _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """A user that cannot be created as asked; the message says why and what to do."""


@dataclass(frozen=True)
class User:
    """A signed-in officer."""

    id: int
    username: str
    role: str


def add(engine: Engine, username: str, password: str, role: str = "officer") -> User:
    """Create an account; the password is stored only as an Argon2id hash."""
    username = username.strip()
    if not username or len(username) > 64 or not username.replace("-", "").replace(".", "").isalnum():
        raise UserError("NAME must be 1 to 64 letters, digits, '-' or '.', e.g. a.smith")
    if role not in ROLES:
        raise UserError(f"--role must be one of {', '.join(ROLES)}; got {role!r}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must be at least {MIN_PASSWORD} characters")
    try:
        with engine.begin() as conn:
            result = conn.execute(
                users.insert().values(
                    username=username,
                    role=role,
                    password_hash=_hasher.hash(password),
                    created_at=now(),
                    failed_logins=0,
                )
            )
    except IntegrityError:
        raise UserError(f"user {username!r} already exists") from None
    key = result.inserted_primary_key
    assert key is not None
    return User(int(key[0]), username, role)


def authenticate(engine: Engine, username: str, password: str) -> tuple[User | None, str]:
    """The user when the password is right and the account is not locked; else None and why (for the log)."""
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.username == username.strip())).mappings().first()
    if row is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY, password)
        return None, "unknown user"
    locked = row["locked_until"]
    stamp = now()
    if locked is not None and locked.replace(tzinfo=stamp.tzinfo) > stamp:
        return None, "locked"
    try:
        _hasher.verify(row["password_hash"], password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        failures = int(row["failed_logins"]) + 1
        lock_until = None
        if failures >= FREE_FAILURES:
            lock = min(MAX_LOCK, BASE_LOCK * 2 ** (failures - FREE_FAILURES))
            lock_until = stamp + lock
        with engine.begin() as conn:
            conn.execute(
                users.update().where(users.c.id == row["id"]).values(failed_logins=failures, locked_until=lock_until)
            )
        return None, "locked now" if lock_until else "wrong password"
    with engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == row["id"]).values(failed_logins=0, locked_until=None))
    return User(int(row["id"]), row["username"], row["role"]), "ok"


def get(engine: Engine, username: str) -> User | None:
    """The account of ``username``, if it exists."""
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
    return User(int(row["id"]), row["username"], row["role"]) if row else None
