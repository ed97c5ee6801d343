"""Evaluate a flagger on any labelled CSV or corpus split: ranking, threshold, categories, provisions,
calibration and robustness to the tricks and accidents of real declarations."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve

from models.flagger import Flagger, Result
from models.normalise import HOMOGLYPHS

REQUIRED = ("description", "label")
CODE_RE = re.compile(r"\b\d[A-E]\d{3}(?:\.[a-z0-9]+)*", re.IGNORECASE)
_LATIN_TO_LOOKALIKE = {"a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "i": "і"}
assert all(HOMOGLYPHS[v] == k for k, v in _LATIN_TO_LOOKALIKE.items())


class EvaluationInputError(ValueError):
    """A labelled file that cannot be evaluated, with the column and the fix."""


@dataclass
class Evaluation:
    """Metrics of one model on one labelled set, plus the per-row scores behind them."""

    name: str
    metrics: dict[str, float]
    per_category: pd.DataFrame
    scores: np.ndarray
    rows: pd.DataFrame = field(repr=False)


def read_labelled(path: Path) -> pd.DataFrame:
    """Read a labelled CSV with at least ``description`` and ``label``; check every row."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "description" not in frame.columns and "text" in frame.columns:
        frame = frame.rename(columns={"text": "description"})
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise EvaluationInputError(f"{path}: missing column(s) {missing}; a labelled file needs description,label")
    bad = frame.index[~frame["label"].isin(["0", "1"])].tolist()
    if bad:
        raise EvaluationInputError(f"{path}: column 'label' must be 0 or 1; rows {bad[:10]} are not")
    empty = frame.index[frame["description"].str.strip() == ""].tolist()
    if empty:
        raise EvaluationInputError(f"{path}: column 'description' is empty in rows {empty[:10]}; fill or remove them")
    frame["label"] = frame["label"].astype(int)
    return frame


def _entries(row: pd.Series) -> set[str]:
    """Annex I entries a row derives from: its provision column, else codes named in its reference."""
    text = str(row.get("provision") or "") or str(row.get("reference") or "")
    return {m.group(0)[:5].upper() for m in CODE_RE.finditer(text)}


def recall_at_fpr(y: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Best recall with a false-positive rate at most ``fpr``."""
    if len(set(y)) < 2:
        return float("nan")
    fprs, tprs, _ = roc_curve(y, scores)
    return float(tprs[fprs <= fpr].max(initial=0.0))


def expected_calibration_error(y: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width score bins, weighted by bin size."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(y[mask].mean() - scores[mask].mean())
    return float(total)


# ----- robustness ------------------------------------------------------------------------------


def _typos(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    for i, w in enumerate(words):
        if len(w) > 4 and w.isalpha() and rng.random() < 0.3:
            j = rng.randrange(1, len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def _homoglyphs(rng: random.Random, text: str) -> str:
    return "".join(
        _LATIN_TO_LOOKALIKE[c.lower()] if c.lower() in _LATIN_TO_LOOKALIKE and rng.random() < 0.5 else c for c in text
    )


def _invisible(rng: random.Random, text: str) -> str:
    return "".join(c + ("\u200b" if c.isalpha() and rng.random() < 0.2 else "") for c in text)


def _spacing(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    words[longest] = " ".join(words[longest])
    return " ".join(words)


def _case(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


PERTURBATIONS: dict[str, Callable[[random.Random, str], str]] = {
    "typos": _typos,
    "homoglyphs": _homoglyphs,
    "invisible": _invisible,
    "spacing": _spacing,
    "case": _case,
}


# ----- the evaluation --------------------------------------------------------------------------


def evaluate(
    flagger: Flagger,
    frame: pd.DataFrame,
    name: str,
    robustness: bool = True,
    seed: int = 13,
    robustness_sample: int | None = 300,
    results: Sequence[Result] | None = None,
) -> Evaluation:
    """Every metric of the flagger on ``frame`` (columns description, label; optionally category, provision)."""
    texts = frame["description"].astype(str).tolist()
    y = frame["label"].to_numpy(dtype=int)
    if results is None:
        results = flagger.score(texts, explain=True)
    scores = np.array([r.score for r in results])
    flagged = np.array([r.flagged for r in results])
    positives = y == 1
    negatives = ~positives
    metrics: dict[str, float] = {
        "rows": float(len(y)),
        "positives": float(positives.sum()),
        "pr_auc": float(average_precision_score(y, scores)) if positives.any() else float("nan"),
        "roc_auc": float(roc_auc_score(y, scores)) if 0 < positives.sum() < len(y) else float("nan"),
        "recall_at_1pct_fpr": recall_at_fpr(y, scores, 0.01),
        "recall_at_5pct_fpr": recall_at_fpr(y, scores, 0.05),
        "threshold": float(flagger.threshold_),
        "precision": float((flagged & positives).sum() / max(flagged.sum(), 1)),
        "recall": float((flagged & positives).sum() / max(positives.sum(), 1)),
        "fpr": float((flagged & negatives).sum() / max(negatives.sum(), 1)),
        "brier": float(brier_score_loss(y, scores)),
        "ece": expected_calibration_error(y, scores),
    }
    per_category = pd.DataFrame()
    if "category" in frame.columns:
        cats = frame["category"].astype(str).to_numpy()
        predicted = np.array([max(r.categories, key=r.categories.__getitem__) for r in results])
        metrics["category_accuracy"] = float((predicted[positives] == cats[positives]).mean()) if positives.any() else 0
        per_category = (
            pd.DataFrame({"category": cats[positives], "flagged": flagged[positives]})
            .groupby("category")["flagged"]
            .agg(rows="count", recall="mean")
            .reset_index()
        )
    if "provision" in frame.columns or "reference" in frame.columns:
        at1 = at3 = counted = 0
        for i, (_, row) in enumerate(frame.iterrows()):
            entries = _entries(row)
            if not positives[i] or not entries or not results[i].provisions:
                continue
            cited = [m.code[:5] for m in results[i].provisions]
            counted += 1
            at1 += cited[0] in entries
            at3 += bool(entries & set(cited[:3]))
        if counted:
            metrics["provision_at_1"] = at1 / counted
            metrics["provision_at_3"] = at3 / counted
            metrics["provision_rows"] = float(counted)
    if robustness and positives.any():
        rng = random.Random(seed)
        originals = [t for t, p in zip(texts, positives, strict=True) if p]
        if robustness_sample is not None and len(originals) > robustness_sample:
            originals = rng.sample(originals, robustness_sample)
        for kind, perturb in PERTURBATIONS.items():
            changed = [perturb(rng, t) for t in originals]
            kept = np.array([r.flagged for r in flagger.score(changed)])
            metrics[f"robust_recall_{kind}"] = float(kept.mean())
    return Evaluation(name, metrics, per_category, scores, frame.assign(score=scores, flagged=flagged))


def table(evaluations: Sequence[Evaluation]) -> pd.DataFrame:
    """Metrics side by side, one column per evaluation."""
    return pd.DataFrame({e.name: e.metrics for e in evaluations})


def as_json(evaluation: Evaluation) -> dict[str, Any]:
    """A JSON-ready summary."""
    return {
        "name": evaluation.name,
        "metrics": evaluation.metrics,
        "per_category": evaluation.per_category.to_dict(orient="records"),
    }
