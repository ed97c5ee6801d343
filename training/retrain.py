"""Retrain on the corpus, the seizure records and the officers' decisions; promote only through every gate.

The newest quarter of the seizures (by date) is held out: never trained on, it is the gate that asks
"would the new model have caught what enforcement found lately?". Recent evidence weighs more, by
repetition (the flagger's parts take no sample weights): a seizure is seen three times in training
when it is within 180 days of the newest record, twice when older; an officer's decision twice when
recent, once when older. Validation and test stay the corpus's own, so the threshold and the gates
compare like with like.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd
from rich.console import Console

from models import registry
from models.settings import Settings
from training import catalog, corpus
from training import seizures as seizures_module
from training import train as train_module

RECENT = timedelta(days=180)
HOLDOUT_SHARE = 0.25


@dataclass
class Retrained:
    """What a retraining run did."""

    version: str | None
    promoted: bool
    gates: list[catalog.Gate]
    message: str
    rows_added: dict[str, int]
    held_out: int


def split_by_date(records: pd.DataFrame, share: float = HOLDOUT_SHARE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Older records for training, the newest ``share`` (at least one) held out."""
    if records.empty:
        return records, records
    ordered = records.assign(_date=pd.to_datetime(records["seizure_date"])).sort_values(["_date", "case_ref"])
    n_held = max(1, round(len(ordered) * share))
    held, train = ordered.iloc[-n_held:], ordered.iloc[:-n_held]
    return train.drop(columns="_date"), held.drop(columns="_date")


def _repeat(rows: pd.DataFrame, times: pd.Series) -> pd.DataFrame:
    return rows.loc[rows.index.repeat(times.to_numpy())].reset_index(drop=True)


def seizure_rows(records: pd.DataFrame) -> pd.DataFrame:
    """Seizure records as corpus rows (all controlled), repeated by recency."""
    if records.empty:
        return pd.DataFrame(columns=list(corpus.COLUMNS))
    dates = pd.to_datetime(records["seizure_date"])
    times = pd.Series(2, index=records.index) + (dates >= dates.max() - RECENT).astype(int)
    key = records["case_ref"].where(records["case_ref"] != "", records["description"].map(_short_hash))
    rows = pd.DataFrame(
        {
            "id": "sz-" + records["version"].astype(str) + "-" + key,
            "text": records["description"],
            "label": 1,
            "category": records["category"],
            "provision": records["provision"],
            "group": "seizure:" + key,
            "hs_code": records["hs_code"],
            "source": "seizure",
        },
        index=records.index,
    )
    return _repeat(rows, times)[list(corpus.COLUMNS)]


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def feedback_rows(feedback: pd.DataFrame) -> pd.DataFrame:
    """Officers' decisions (``feedback export``) as corpus rows, repeated by recency."""
    if feedback.empty:
        return pd.DataFrame(columns=list(corpus.COLUMNS))
    decided = pd.to_datetime(feedback["decided_at"], utc=True, errors="coerce")
    times = pd.Series(1, index=feedback.index) + (decided >= decided.max() - RECENT).astype(int)
    key = feedback["description"].map(_short_hash)
    rows = pd.DataFrame(
        {
            "id": "fb-" + key,
            "text": feedback["description"],
            "label": feedback["label"].astype(int),
            "category": feedback["category"].where(feedback["label"].astype(int) == 1, "none"),
            "provision": feedback["provision"].fillna("").astype(str),
            "group": "feedback:" + key,
            "hs_code": feedback["hs_code"].fillna("").astype(str),
            "source": "feedback",
        },
        index=feedback.index,
    )
    return _repeat(rows, times)[list(corpus.COLUMNS)]


def held_out_set(records: pd.DataFrame) -> pd.DataFrame:
    """Held-out seizures in the evaluation schema (``description, label, category, provision``)."""
    return pd.DataFrame(
        {
            "id": records["case_ref"],
            "description": records["description"],
            "hs_code": records["hs_code"],
            "label": 1,
            "category": records["category"],
            "provision": records["provision"],
        }
    ).reset_index(drop=True)


def run(
    settings: Settings,
    feedback: pd.DataFrame | None = None,
    candidates: list[str] | None = None,
    console: Console | None = None,
    params: dict[str, Any] | None = None,
) -> Retrained:
    """Train on corpus + seizures + decisions, register the challenger, and promote it if every gate passes."""
    console = console or Console()
    frames = corpus.load(settings.corpus)
    stored = seizures_module.load_all(settings.seizures_dir)
    versions = [v.version for v in seizures_module.versions(settings.seizures_dir)]
    train_records, held = split_by_date(stored)
    feedback = feedback if feedback is not None else pd.DataFrame(columns=["description", "label"])
    added = {"seizures": seizure_rows(train_records), "decisions": feedback_rows(feedback)}
    frames = {**frames, "train": pd.concat([frames["train"], *added.values()], ignore_index=True)}
    feedback_digest = _short_hash(feedback.to_csv(index=False)) if len(feedback) else "none"
    tags = {
        "seizure_versions": ",".join(versions) or "none",
        "seizures_held_out": str(len(held)),
        "feedback_sha256": feedback_digest,
        "feedback_rows": str(len(feedback)),
        "kind": "retrain",
    }
    outcomes = train_module.run(
        settings, params or {}, candidates, register=True, console=console, frames=frames, tags=tags
    )
    challenger = registry.by_alias(settings.model_name, registry.CHALLENGER)
    assert challenger is not None
    held_set = held_out_set(held) if len(held) else None
    moved, gates, message = catalog.promote(settings, challenger.version, seizures=held_set)
    del outcomes
    return Retrained(challenger.version, moved, gates, message, {k: len(v) for k, v in added.items()}, len(held))
