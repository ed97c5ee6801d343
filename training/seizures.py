"""Seizure records: validated row by row, stored as content-hashed versions, never silently dropped.

``ingest`` reads CSV, XLSX or Parquet, validates it with a pandera schema, writes every rejected
row with its row number and reason to a rejects file, and stores the accepted rows as a new
version named by the SHA-256 of their content. Ingesting the same rows again is a no-op; a row
already held in an earlier version is reported as a duplicate, not stored twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from models.controllist import ControlList
from models.lexicon import CATEGORIES

REQUIRED = ("seizure_date", "description", "category")
OPTIONAL = (
    "hs_code", "reporting_country", "origin_country", "destination_country", "quantity", "unit", "provision",
    "case_ref",
)  # fmt: skip
COLUMNS = REQUIRED + OPTIONAL
MAX_DESCRIPTION = 2000
EARLIEST = date(1990, 1, 1)
CONTROLLED = tuple(c for c in CATEGORIES if c != "none")


class SeizureInputError(ValueError):
    """A file that cannot be read as seizure records at all (format, missing columns)."""


@dataclass(frozen=True)
class Version:
    """One stored version of the seizures data set."""

    version: str
    rows: int
    file: str
    source: str
    ingested_at: str


@dataclass(frozen=True)
class Ingested:
    """What one ingest did."""

    version: Version | None
    accepted: int
    rejected: pd.DataFrame
    rejects_file: Path | None
    new: bool
    message: str


def read(path: Path) -> pd.DataFrame:
    """Every cell as text; an error naming the missing columns and the accepted formats."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    elif suffix in (".xlsx", ".xlsm"):
        frame = pd.read_excel(path, dtype=str, keep_default_na=False)
    elif suffix == ".parquet":
        frame = pd.read_parquet(path).astype("string").fillna("").astype(str)
    else:
        raise SeizureInputError(f"{path.name}: unsupported format {suffix!r}; send CSV, XLSX or Parquet")
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise SeizureInputError(f"{path.name}: missing required column(s) {', '.join(missing)}; required: {REQUIRED}")
    for column in OPTIONAL:
        if column not in frame.columns:
            frame[column] = ""
    out: pd.DataFrame = frame[list(COLUMNS)].astype(str).apply(lambda s: s.str.strip())
    return out


def _real_date(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
    today = pd.Timestamp(datetime.now(UTC).date())
    return parsed.notna() & (parsed >= pd.Timestamp(EARLIEST)) & (parsed <= today)


def schema(controls: ControlList) -> pa.DataFrameSchema:
    """The seizure record schema; each check's name is the reason a row fails it."""

    def known_provision(values: pd.Series) -> pd.Series:
        return values.map(lambda v: v == "" or v in controls)

    def quantity(values: pd.Series) -> pd.Series:
        numbers = pd.to_numeric(values.str.replace(",", "", regex=False), errors="coerce")
        return (values == "") | (numbers.notna() & (numbers >= 0))

    country = pa.Check.str_matches(r"^([A-Z]{2})?$", error="must be an ISO 3166 alpha-2 code such as NL")
    return pa.DataFrameSchema(
        {
            "seizure_date": pa.Column(
                str, pa.Check(_real_date, error="must be a real date YYYY-MM-DD, not in the future")
            ),
            "description": pa.Column(
                str,
                pa.Check.str_length(1, MAX_DESCRIPTION, error=f"must be 1 to {MAX_DESCRIPTION} characters"),
            ),
            "category": pa.Column(str, pa.Check.isin(CONTROLLED, error=f"must be one of {', '.join(CONTROLLED)}")),
            "hs_code": pa.Column(
                str, pa.Check.str_matches(r"^(\d{6}(\d{2}){0,2})?$", error="must be 6, 8 or 10 digits, or empty")
            ),
            "reporting_country": pa.Column(str, country),
            "origin_country": pa.Column(str, country),
            "destination_country": pa.Column(str, country),
            "quantity": pa.Column(str, pa.Check(quantity, error="must be a number of at least 0, or empty")),
            "unit": pa.Column(str, pa.Check.str_length(0, 16, error="must be at most 16 characters")),
            "provision": pa.Column(str, pa.Check(known_provision, error="must be an Annex I provision code, or empty")),
            "case_ref": pa.Column(str, pa.Check.str_length(0, 64, error="must be at most 64 characters")),
        },
        strict=True,
        ordered=False,
    )


def _key(frame: pd.DataFrame) -> pd.Series:
    return frame["seizure_date"] + "\x1f" + frame["description"] + "\x1f" + frame["case_ref"]


def validate(
    frame: pd.DataFrame, controls: ControlList, held: set[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split into accepted rows and rejected rows (``row``, ``column``, ``reason``, ``value``).

    ``row`` is the line in the file (the header is line 1). ``held`` are keys already stored.
    """
    reasons: list[dict[str, Any]] = []
    try:
        schema(controls).validate(frame, lazy=True)
    except SchemaErrors as err:
        cases = err.failure_cases
        for case in cases.itertuples(index=False):
            if pd.isna(case.index):
                continue
            value = str(case.failure_case)
            reasons.append(
                {
                    "row": int(case.index) + 2,
                    "column": case.column,
                    "reason": f"{case.column} {case.check}",
                    "value": value if len(value) <= 80 else value[:77] + "...",
                }
            )
    bad = {r["row"] - 2 for r in reasons}
    keys = _key(frame)
    first_seen: dict[str, int] = {}
    for index, key in keys.items():
        i = int(str(index))
        if i in bad:
            continue
        if held and key in held:
            reasons.append(
                {"row": i + 2, "column": "", "reason": "already ingested in an earlier version", "value": ""}
            )
        elif key in first_seen:
            reasons.append(
                {"row": i + 2, "column": "", "reason": f"duplicate of row {first_seen[key] + 2}", "value": ""}
            )
        else:
            first_seen[key] = i
    rejected = pd.DataFrame(reasons, columns=["row", "column", "reason", "value"]).sort_values(["row", "column"])
    keep = sorted(set(range(len(frame))) - {r - 2 for r in rejected["row"]})
    return frame.iloc[keep].reset_index(drop=True), rejected.reset_index(drop=True)


def digest(frame: pd.DataFrame) -> str:
    """SHA-256 of the rows' content, independent of their order in the file."""
    canonical = frame[list(COLUMNS)].sort_values(list(COLUMNS)).to_csv(index=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def versions(directory: Path) -> list[Version]:
    """Stored versions, oldest first."""
    manifest = Path(directory) / "versions.json"
    if not manifest.is_file():
        return []
    return [Version(**v) for v in json.loads(manifest.read_text(encoding="utf-8"))]


def load_all(directory: Path) -> pd.DataFrame:
    """Every stored version's rows, with a ``version`` column."""
    frames = [pd.read_parquet(Path(directory) / v.file).assign(version=v.version) for v in versions(directory)]
    if not frames:
        return pd.DataFrame(columns=[*COLUMNS, "version"])
    return pd.concat(frames, ignore_index=True)


def ingest(path: Path, directory: Path, controls: ControlList) -> Ingested:
    """Validate ``path`` and store its accepted rows as a new version under ``directory``."""
    directory = Path(directory)
    frame = read(path)
    stored = load_all(directory)
    held = set(_key(stored.astype(str))) if len(stored) else set()
    accepted, rejected = validate(frame, controls, held)
    rejects_file = None
    source_hash = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    if len(rejected):
        directory.mkdir(parents=True, exist_ok=True)
        rejects_file = directory / f"rejects-{Path(path).stem}-{source_hash}.csv"
        rejected.to_csv(rejects_file, index=False)
    if accepted.empty:
        held_rows = int((rejected["reason"] == "already ingested in an earlier version").sum())
        others = rejected.loc[rejected["reason"] != "already ingested in an earlier version", "row"].nunique()
        message = (
            f"nothing new: {held_rows} rows already ingested, {others} rejected" if held_rows else "no row was accepted"
        )
        return Ingested(None, 0, rejected, rejects_file, False, message)
    version_id = digest(accepted)[:16]
    existing = {v.version: v for v in versions(directory)}
    if version_id in existing:
        return Ingested(existing[version_id], 0, rejected, rejects_file, False, f"already ingested as {version_id}")
    directory.mkdir(parents=True, exist_ok=True)
    file = f"seizures-{version_id}.parquet"
    accepted.to_parquet(directory / file, index=False)
    version = Version(version_id, len(accepted), file, Path(path).name, datetime.now(UTC).isoformat(timespec="seconds"))
    manifest = [*(v.__dict__ for v in existing.values()), version.__dict__]
    tmp = directory / "versions.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    tmp.replace(directory / "versions.json")
    return Ingested(
        version, len(accepted), rejected, rejects_file, True, f"stored {len(accepted)} rows as {version_id}"
    )
