"""Find, load, promote and roll back registered models."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from models import registry
from models.flagger import Flagger
from models.loader import load_model
from models.settings import Settings
from training import corpus
from training.evaluate import evaluate, read_labelled


def champion_exists(settings: Settings) -> bool:
    """Whether the registered model has a champion."""
    registry.configure(settings.tracking)
    return registry.by_alias(settings.model_name, registry.CHAMPION) is not None


@dataclass
class Gate:
    """One promotion check and its outcome."""

    name: str
    challenger: float
    champion: float
    passed: bool


def gates(
    challenger: Flagger, champion: Flagger | None, settings: Settings, seizures: pd.DataFrame | None = None
) -> list[Gate]:
    """Compare on the corpus test split and dev-eval (same rows for both), require every canary flagged,
    and, given held-out seizures, catch at least as many of them as the champion does."""
    frames = corpus.load(settings.corpus)
    sets = {
        "test": frames["test"].rename(columns={"text": "description"}),
        "dev_eval": read_labelled(settings.data_dir / "eval" / "dev_eval.csv"),
    }
    out = []
    for name, frame in sets.items():
        new = evaluate(challenger, frame, name, robustness=False).metrics["pr_auc"]
        old = evaluate(champion, frame, name, robustness=False).metrics["pr_auc"] if champion else float("-inf")
        out.append(Gate(f"{name} PR-AUC", new, old, new >= old))
    canary = pd.read_csv(settings.data_dir / "eval" / "canary.csv", dtype=str, keep_default_na=False)
    flagged = [r.flagged for r in challenger.score(canary["description"].tolist())]
    out.append(Gate("canary rows flagged", float(sum(flagged)), float(len(flagged)), all(flagged)))
    if seizures is not None and len(seizures):
        texts = seizures["description"].tolist()
        new_recall = sum(r.flagged for r in challenger.score(texts)) / len(texts)
        old_recall = sum(r.flagged for r in champion.score(texts)) / len(texts) if champion else float("-inf")
        out.append(Gate("held-out seizures recall", new_recall, old_recall, new_recall >= old_recall))
    return out


def promote(
    settings: Settings, version: str | None = None, seizures: pd.DataFrame | None = None
) -> tuple[bool, list[Gate], str]:
    """Move ``champion`` to ``version`` (default: the challenger) only if every gate passes."""
    registry.configure(settings.tracking)
    name = settings.model_name
    if version is None:
        challenger = registry.by_alias(name, registry.CHALLENGER)
        if challenger is None:
            raise LookupError(f"{name} has no challenger; train one with `dualscreen train`")
        version = challenger.version
    new, _ = load_model(f"models:/{name}/{version}", settings)
    current = registry.by_alias(name, registry.CHAMPION)
    if current is not None and current.version == version:
        return False, [], f"version {version} is already the champion"
    old = load_model(f"models:/{name}/{current.version}", settings)[0] if current else None
    results = gates(new, old, settings, seizures)
    if all(g.passed for g in results):
        registry.move_champion(name, version)
        return True, results, f"version {version} is now the champion"
    return False, results, f"version {version} was not promoted: a gate failed"


def rollback(settings: Settings) -> str:
    """Point ``champion`` back at the version it replaced."""
    registry.configure(settings.tracking)
    restored, replaced = registry.roll_back(settings.model_name)
    return f"champion is version {restored} again (was {replaced})"
