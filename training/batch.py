"""Batch scoring of a CSV of descriptions, with progress, keeping every row."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import Progress

from models.flagger import Flagger

MAX_DESCRIPTION = 2000


class BatchInputError(ValueError):
    """An input file that cannot be scored, naming the column and the fix."""


def read(path: Path) -> pd.DataFrame:
    """Read the input CSV; it needs a ``description`` column, may have ``id`` and ``hs_code``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "description" not in frame.columns:
        raise BatchInputError(f"{path}: no 'description' column; the file needs description[,id,hs_code]")
    if "id" not in frame.columns:
        frame.insert(0, "id", [str(i + 1) for i in range(len(frame))])
    return frame


def _problem(description: str) -> str | None:
    if not description.strip():
        return "description is empty"
    if len(description) > MAX_DESCRIPTION:
        return f"description is longer than {MAX_DESCRIPTION} characters; split the goods into separate rows"
    return None


COLUMNS = ("id", "score", "flagged", "category", "provision", "error")


def score_rows(flagger: Flagger, frame: pd.DataFrame, explain: bool = False) -> pd.DataFrame:
    """Scores of one batch of rows (``id``, ``description``); a row that cannot be scored gets an ``error``."""
    frame = frame.reset_index(drop=True)
    problems = [_problem(str(d)) for d in frame["description"]]
    good = [i for i, p in enumerate(problems) if p is None]
    out = pd.DataFrame({"id": frame["id"].astype(str)})
    out["score"] = pd.Series([float("nan")] * len(frame), dtype="float64")
    out["flagged"] = pd.Series([None] * len(frame), dtype="boolean")
    for col in ("category", "provision", "error"):
        out[col] = pd.Series([None] * len(frame), dtype="object")
    if explain:
        out["explanation"] = pd.Series([None] * len(frame), dtype="object")
    results = flagger.score(frame["description"].iloc[good].astype(str).tolist(), explain=True) if good else []
    for i, r in zip(good, results, strict=True):
        out.at[i, "score"] = round(r.score, 6)
        out.at[i, "flagged"] = r.flagged
        out.at[i, "category"] = r.category
        out.at[i, "provision"] = r.provisions[0].code if r.provisions else ""
        if explain:
            payload = {
                "provisions": [asdict(p) for p in r.provisions],
                "hits": [asdict(h) for h in r.hits],
                "tokens": [asdict(t) for t in sorted(r.tokens, key=lambda t: -abs(t.weight))[:8]],
                "notes": r.notes,
            }
            out.at[i, "explanation"] = json.dumps(payload, ensure_ascii=False)
    for i, p in enumerate(problems):
        if p is not None:
            out.at[i, "error"] = p
    return out


def score(
    flagger: Flagger,
    frame: pd.DataFrame,
    explain: bool = False,
    batch_size: int = 256,
    console: Console | None = None,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Score every row; rows that cannot be scored keep their place with an ``error``."""
    parts = []
    with Progress(console=console or Console(), transient=True) as progress:
        task = progress.add_task("scoring", total=len(frame))
        for lo in range(0, len(frame), batch_size):
            parts.append(score_rows(flagger, frame.iloc[lo : lo + batch_size], explain))
            progress.advance(task, min(batch_size, len(frame) - lo))
    columns = [*COLUMNS, "explanation"] if explain else list(COLUMNS)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    rejected = [(str(i), str(e)) for i, e in zip(out["id"], out["error"], strict=True) if e is not None]
    return out, rejected
