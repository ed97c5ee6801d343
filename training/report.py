"""Artifacts people compare: PR curves, calibration plots, per-category recall, confusion tables, model cards."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from training.evaluate import Evaluation


def pr_curve(evaluations: Sequence[Evaluation], threshold: float, path: Path) -> Path:
    """Precision-recall curves with the operating point marked."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for e in evaluations:
        y = e.rows["label"].to_numpy()
        precision, recall, thresholds = precision_recall_curve(y, e.scores)
        ax.plot(recall, precision, label=f"{e.name} (PR-AUC {e.metrics['pr_auc']:.3f})")
        at = np.searchsorted(thresholds, threshold)
        if at < len(thresholds):
            ax.scatter([recall[at]], [precision[at]], s=25)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(f"precision-recall (threshold {threshold:.3f} marked)")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def calibration(evaluations: Sequence[Evaluation], path: Path, bins: int = 10) -> Path:
    """Reliability diagram: observed positive rate against mean score per bin."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    edges = np.linspace(0, 1, bins + 1)
    for e in evaluations:
        y = e.rows["label"].to_numpy()
        which = np.clip(np.digitize(e.scores, edges[1:-1]), 0, bins - 1)
        xs, ys = [], []
        for b in range(bins):
            mask = which == b
            if mask.sum() >= 5:
                xs.append(e.scores[mask].mean())
                ys.append(y[mask].mean())
        ax.plot(xs, ys, marker="o", label=f"{e.name} (ECE {e.metrics['ece']:.3f})")
    ax.set_xlabel("mean score")
    ax.set_ylabel("fraction positive")
    ax.set_title("calibration")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def category_recall(evaluations: Sequence[Evaluation], path: Path) -> Path:
    """Recall at the threshold for each category of controlled goods."""
    frames = [e.per_category.assign(set=e.name) for e in evaluations if not e.per_category.empty]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if frames:
        both = pd.concat(frames).pivot_table(index="category", columns="set", values="recall")
        both.plot.barh(ax=ax)
    ax.set_xlim(0, 1)
    ax.set_xlabel("recall at threshold")
    ax.set_title("recall per category")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion(evaluation: Evaluation) -> pd.DataFrame:
    """Label against flag, counts."""
    rows = evaluation.rows
    return pd.crosstab(rows["label"].rename("label"), rows["flagged"].rename("flagged"))


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (index first)."""
    header = "| " + " | ".join([str(frame.index.name or ""), *map(str, frame.columns)]) + " |"
    rule = "|" + "---|" * (len(frame.columns) + 1)
    body = [
        "| " + " | ".join([str(i), *(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row)]) + " |"
        for i, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    ]
    return "\n".join([header, rule, *body])


def model_card(
    name: str,
    parts: Sequence[str],
    metrics: dict[str, dict[str, float]],
    threshold: float,
    corpus_digest: str,
    counts: dict[str, Any],
) -> str:
    """A markdown model card: data, intended use, limits, metrics."""
    table = pd.DataFrame(metrics).round(4)
    return f"""# dualscreen model card: {name}

**Parts:** {", ".join(parts)}. **Decision threshold:** {threshold:.4f}, chosen on the validation split
for recall >= 0.95.

## Intended use
Screening the free-text goods descriptions of customs declarations and bills of lading for goods
that may be CBRN-related, dual-use (Annex I of Regulation (EU) 2021/821) or military, so that an
officer looks at them. A flag is a reason to look, never a licensing decision: the cited
provision, watch-list hits and highlighted words are there for the officer to check.

## Data
Corpus digest `{corpus_digest}`; rows per split: {counts}. Positives are composed from a curated
lexicon tied to Annex I provisions and from the watch list; negatives are real trade wording
(HMRC parcel descriptions and trade terms), HS 2022 subheadings and each item's ordinary twins.
Splits keep whole lexicon items in one split, so the test split measures goods the model has not
seen. The development evaluation set (`data/eval/dev_eval.csv`) is written independently and is
never trained on.

## Metrics
{markdown(table)}

## Limits
- Labels come from the control list as the lexicon reads it, not from officers' decisions or
  licensing outcomes; catch-all (end-use) controls are barely represented.
- Numeric thresholds are checked only against the nearest Annex I provision, and only for the
  quantities and comparisons the parser reads (units in SI, "greater than", "or more"...); the
  nearest provision is the right entry for 60 to 66 % of unseen goods (test, validation), so a
  value just across a threshold may still be scored like its neighbour.
- Languages other than English appear only where the lexicon gives translations.
- Scores are calibrated on the validation split, whose base rate (about half positive) is far
  above real traffic; at real prevalence most flags will be false positives.
"""
