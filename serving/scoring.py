"""The served model: a verified flagger with what it needs to explain itself, swapped as one object."""

from __future__ import annotations

import csv
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from models.controllist import ControlList
from models.flagger import Flagger, Result
from models.hscheck import HsExpectations
from models.hscheck import load as load_hs
from models.loader import load_model
from models.settings import Settings
from serving import schemas


@dataclass(frozen=True)
class Served:
    """One loaded model and the facts the API reports about it. Immutable: a swap replaces it whole."""

    flagger: Flagger
    info: schemas.ModelInfo
    controls: ControlList
    hs: HsExpectations
    threshold: float
    references: dict[str, str] = field(default_factory=dict)
    schedules: dict[str, str] = field(default_factory=dict)


def load(settings: Settings, uri: str | None = None) -> Served:
    """Load and verify the model at ``uri`` (default: the settings' model URI)."""
    uri = uri or settings.model_uri
    flagger, info = load_model(uri, settings)
    controls = flagger.controls if flagger.controls is not None else None
    if controls is None:
        raise ValueError(f"{uri}: the model carries no control list to cite")
    name = info.get("name") or Path(info["uri"]).name
    model = schemas.ModelInfo(
        name=name,
        version=info.get("version") or "local",
        alias=info.get("alias") or "",
        sha256=info["sha256"],
    )
    references = {s.name: s.reference for s in flagger.watchlist.substances} if flagger.watchlist else {}
    threshold = settings.threshold if settings.threshold is not None else float(flagger.threshold_)
    return Served(flagger, model, controls, load_hs(settings.data_dir), threshold, references, cwc_schedules(settings))


def cwc_schedules(settings: Settings) -> dict[str, str]:
    """CAS number to CWC schedule entry (``2B.13``), from the CWC's own schedules."""
    path = settings.data_dir / "reference" / "cwc-schedules" / "cwc_schedules.csv"
    with path.open(encoding="utf-8") as handle:
        return {r["cas"]: f"{r['schedule']}{r['part']}.{r['item']}" for r in csv.DictReader(handle) if r["cas"]}


def description_hash(text: str) -> str:
    """SHA-256 of a description: the audit record keeps this, not the text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def item_ids(items: Sequence[schemas.Item]) -> list[str]:
    """The items' ids, generated where absent."""
    return [item.id or f"item-{uuid.uuid4().hex[:12]}" for item in items]


def score(
    served: Served, items: Sequence[schemas.Item], ids: Sequence[str], explain: bool
) -> tuple[list[schemas.Score], dict[int, schemas.Score]]:
    """Scores of ``items`` (explained when asked) and, by position, the explanation of every flagged one.

    The review queue needs the reasons of each flagged item whether or not the caller asked; they
    come from the same pass, so nothing is scored twice.
    """
    texts = [i.description for i in items]
    results = served.flagger.score(texts, explain=True if explain else "flagged", threshold=served.threshold)
    scored = [to_schema(served, r, item, i, explain) for r, item, i in zip(results, items, ids, strict=True)]
    explained = {
        k: scored[k] if explain else to_schema(served, results[k], items[k], ids[k], True)
        for k, r in enumerate(results)
        if r.flagged
    }
    return scored, explained


def to_schema(served: Served, result: Result, item: schemas.Item, item_id: str, explain: bool) -> schemas.Score:
    """One flagger result in the API's terms."""
    out = schemas.Score(
        id=item_id,
        score=round(result.score, 6),
        flagged=result.flagged,
        threshold=round(served.threshold, 6),
        category=result.category,
    )
    out._oov, out._novelty = result.oov, result.novelty
    if not explain:
        return out
    out.categories = {k: round(v, 6) for k, v in result.categories.items()}
    out.provisions = []
    checks = {c.code: c for c in result.checks}
    for match in result.provisions:
        if match.code not in served.controls:
            continue
        provision = served.controls.get(match.code)
        limits = checks.get(match.code)
        out.provisions.append(
            schemas.Provision(
                code=provision.code,
                regime=provision.regime,
                text=provision.text,
                similarity=round(match.similarity, 4),
                limits=None
                if limits is None
                else schemas.Limits(status=limits.status, limits=limits.stated, note=limits.note),
            )
        )
    out.hits = [
        schemas.Hit(
            substance=h.substance,
            cas=h.cas,
            provision=h.provision,
            reference=served.references.get(h.substance, ""),
            cwc_schedule=served.schedules.get(h.cas or "", ""),
            kind=h.kind,
            by=h.by,
            start=h.start,
            end=h.end,
        )
        for h in result.hits
    ]
    out.tokens = [
        schemas.Token(text=t.text, start=t.start, end=t.end, weight=round(t.weight, 4)) for t in result.tokens
    ]
    check = served.hs.check(item.hs_code, result.hits, [m.code for m in result.provisions], result.flagged)
    out.hs_check = schemas.HsCheck(declared=check.declared, consistent=check.consistent, note=check.note)
    out.notes = list(result.notes)
    return out


def explanation_json(result: schemas.Score) -> str:
    """The explanation stored with a flagged item in the review queue."""
    return json.dumps(result.model_dump(exclude={"id", "score", "flagged", "threshold", "category"}))
