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


def score(
    flagger: Flagger,
    frame: pd.DataFrame,
    explain: bool = False,
    batch_size: int = 256,
    console: Console | None = None,
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Score every row; rows that cannot be scored keep their place with an ``error``."""
    problems = [_problem(d) for d in frame["description"]]
    good = [i for i, p in enumerate(problems) if p is None]
    out = frame[["id"]].copy()
    for col in ("score", "flagged", "category", "provision", "error"):
        out[col] = None
    if explain:
        out["explanation"] = None
    with Progress(console=console or Console(), transient=True) as progress:
        task = progress.add_task("scoring", total=len(good))
        for lo in range(0, len(good), batch_size):
            rows = good[lo : lo + batch_size]
            results = flagger.score(frame["description"].iloc[rows].tolist(), explain=True)
            for i, r in zip(rows, results, strict=True):
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
            progress.advance(task, len(rows))
    rejected = [(str(frame["id"].iloc[i]), p) for i, p in enumerate(problems) if p is not None]
    for i, p in enumerate(problems):
        if p is not None:
            out.at[i, "error"] = p
            out.at[i, "flagged"] = None
    return out, rejected
