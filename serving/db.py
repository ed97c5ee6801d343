"""The service's database: API keys, the scoring audit record and the review queue (SQLAlchemy Core).

SQLite in WAL mode by default (one file under ``var/``); any SQLAlchemy URL, such as PostgreSQL,
by ``DUALSCREEN_DATABASE_URL``. Descriptions are stored only for flagged items (the review queue
needs them); the audit record of every call keeps a hash of the description, never its text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    text,
)

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

score_audit = Table(
    "score_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(36), nullable=False, index=True),
    Column("key_id", String(16), nullable=False),
    Column("item_id", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("model_version", String(64), nullable=False),
    Column("model_sha256", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("flagged", Boolean, nullable=False),
    Column("category", String(32), nullable=False),
    Column("description_sha256", String(64), nullable=False),
    # Drift signals: share of words the model has never seen; distance to the nearest training text.
    Column("oov_rate", Float, nullable=True),
    Column("novelty", Float, nullable=True),
)

review_items = Table(
    "review_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("audit_id", Integer, ForeignKey("score_audit.id"), nullable=True),
    Column("request_id", String(36), nullable=False),
    Column("key_id", String(16), nullable=False),
    Column("item_id", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("category", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("hs_code", String(16), nullable=True),
    Column("explanation", Text, nullable=False),
    Column("status", String(16), nullable=False, default="open"),
    # Optimistic concurrency: a decision names the version it saw; the second of two loses.
    Column("version", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_review_status_created", "status", "created_at"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True), nullable=True),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("review_item_id", Integer, ForeignKey("review_items.id"), nullable=False, index=True),
    Column("decision", String(16), nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("category", String(32), nullable=False),
    Column("decided_by", String(64), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("model_version", String(64), nullable=False),
    # A watch-listed substance judged not controlled needs a second officer before it is a label.
    Column("needs_confirmation", Boolean, nullable=False, default=False),
    Column("confirmed_by", String(64), nullable=True),
    Column("confirmed_at", DateTime(timezone=True), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True),
    Column("at", DateTime(timezone=False), nullable=False),  # naive UTC: hashed, so stored exactly
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("item_id", Integer, nullable=True),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row: the head of the audit chain. Appending updates it first, which serialises writers.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Per API key, the generic cell rate algorithm's theoretical arrival time (seconds since the epoch).
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("tat", Float, nullable=False),
)

heartbeat = Table(
    "heartbeat",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)


def now() -> datetime:
    """The current time, UTC, timezone-aware."""
    return datetime.now(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; NORMAL sync is durable across crashes of the process.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def connect(url: str) -> Engine:
    """An engine for ``url`` with the schema created; SQLite files get WAL mode and their directory."""
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 5}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    migrate(engine)
    return engine


MIGRATIONS = Path(__file__).parent / "migrations"


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (``serving/migrations``).

    A database created before the project used migrations (tables, no ``alembic_version``) gets the
    tables and columns it lacks and is then stamped as current.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    tables = set(inspect(engine).get_table_names())
    if tables and "alembic_version" not in tables:
        metadata.create_all(engine)
        upgrade(engine)
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.stamp(config, "head")
        return
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def upgrade(engine: Engine) -> list[str]:
    """Add columns that a newer release defines and an existing database lacks (additive changes only).

    Tables are created whole by ``create_all``; a column added later to an existing table is added
    here, nullable or with its server default, so an upgraded service keeps its data.
    """
    added = []
    existing = inspect(engine)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            clause = f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"
            if column.server_default is not None:
                clause += f" NOT NULL DEFAULT {column.server_default.arg}"  # type: ignore[attr-defined]
            with engine.begin() as conn:
                conn.execute(text(clause))
            added.append(f"{table.name}.{column.name}")
    return added


def writable(engine: Engine) -> bool:
    """Whether the database takes a write now (readiness)."""
    try:
        with engine.begin() as conn:
            updated = conn.execute(heartbeat.update().where(heartbeat.c.id == 1).values(at=now())).rowcount
            if not updated:
                conn.execute(heartbeat.insert().values(id=1, at=now()))
    except Exception:  # any driver error means not ready; the reason goes to the log, not the probe
        return False
    return True


def ping(engine: Engine) -> None:
    """Raise if the database cannot be reached."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
