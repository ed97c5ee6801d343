"""Has the traffic moved away from what the model was trained on?

Recent scored traffic (the audit record: score, flag, category, and per description the share of
words outside the model's vocabulary and the distance to the nearest training description) is
compared with the training data's validation split scored by the same model:
- score distribution: population stability index against the training negatives (declaration
  traffic is overwhelmingly ordinary goods, so that is the population it should resemble);
- flag rate by category: the share of traffic flagged as each category against the share of
  training negatives flagged so;
- novelty: the share of descriptions farther from every training description than 99% of the
  validation descriptions are (only those that went through the encoder carry the measure);
- out-of-vocabulary rate: the mean share of unknown words, against the validation split's.
Any measure over its limit makes ``dualscreen drift`` exit non-zero, so a scheduler can alert.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from models.flagger import Flagger


@dataclass(frozen=True)
class Limits:
    """Where each measure starts to alert."""

    score_psi: float = 0.25
    flag_rate_delta: float = 0.05
    novel_share: float = 0.05
    oov_delta: float = 0.10


@dataclass
class Measure:
    """One drift measure, its limit and whether it is over."""

    name: str
    value: float
    limit: float
    detail: str = ""

    @property
    def over(self) -> bool:
        return bool(self.value > self.limit)


@dataclass
class Report:
    """Every measure, and the samples behind them."""

    measures: list[Measure]
    recent_rows: int
    reference_rows: int
    figures: dict[str, bytes] = field(default_factory=dict)

    @property
    def drifted(self) -> bool:
        return any(m.over for m in self.measures)


def reference(flagger: Flagger, texts: list[str], labels: np.ndarray) -> pd.DataFrame:
    """The training side: the validation split scored by ``flagger``, with its drift signals."""
    results = flagger.score(texts)
    return pd.DataFrame(
        {
            "label": labels,
            "score": [r.score for r in results],
            "flagged": [r.flagged for r in results],
            "category": [r.category for r in results],
            "oov_rate": [r.oov for r in results],
            "novelty": [np.nan if r.novelty is None else r.novelty for r in results],
        }
    )


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected``, on the expected's deciles."""
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        edges = np.linspace(0, 1, bins + 1)
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / max(len(expected), 1)
    a = np.histogram(actual, edges)[0] / max(len(actual), 1)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def compare(recent: pd.DataFrame, ref: pd.DataFrame, limits: Limits | None = None) -> Report:
    """Every measure of ``recent`` traffic against the scored validation split ``ref``."""
    limits = limits or Limits()
    negatives = ref[ref["label"] == 0]
    measures = [
        Measure(
            "score distribution (PSI vs training negatives)",
            psi(negatives["score"].to_numpy(), recent["score"].to_numpy(dtype=float)),
            limits.score_psi,
        )
    ]
    categories = sorted((set(recent["category"]) | set(negatives["category"])) - {"none"})
    deltas = {c: float((recent["category"] == c).mean() - (negatives["category"] == c).mean()) for c in categories}
    worst = max(deltas, key=lambda c: abs(deltas[c]), default="")
    measures.append(
        Measure(
            "flag rate by category (largest change)",
            abs(deltas[worst]) if worst else 0.0,
            limits.flag_rate_delta,
            f"{worst}: {deltas[worst]:+.3f}" if worst else "no flags",
        )
    )
    ref_novelty = ref["novelty"].dropna().to_numpy(dtype=float)
    recent_novelty = recent["novelty"].dropna().to_numpy(dtype=float)
    if len(ref_novelty) and len(recent_novelty):
        cut = float(np.quantile(ref_novelty, 0.99))
        share = float((recent_novelty > cut).mean())
        detail = f"{len(recent_novelty)} descriptions measured; 1% of validation lies beyond {cut:.3f}"
    else:
        share, detail = 0.0, "no description went through the encoder"
    measures.append(Measure("share far from the training data", share, limits.novel_share, detail))
    recent_oov = float(recent["oov_rate"].astype(float).mean())
    ref_oov = float(ref["oov_rate"].mean())
    measures.append(
        Measure(
            "out-of-vocabulary rate (increase)",
            recent_oov - ref_oov,
            limits.oov_delta,
            f"{recent_oov:.3f} recent against {ref_oov:.3f} in validation",
        )
    )
    report = Report(measures, len(recent), len(ref))
    report.figures["drift.png"] = _figure(recent, negatives)
    return report


def _figure(recent: pd.DataFrame, negatives: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    bins = np.linspace(0, 1, 21)
    axes[0].hist(negatives["score"], bins=bins, density=True, alpha=0.5, label="training negatives")
    axes[0].hist(recent["score"].astype(float), bins=bins, density=True, alpha=0.5, label="recent traffic")
    axes[0].set_title("score")
    axes[0].legend()
    axes[1].hist(negatives["oov_rate"], bins=bins, density=True, alpha=0.5, label="training negatives")
    axes[1].hist(recent["oov_rate"].astype(float), bins=bins, density=True, alpha=0.5, label="recent traffic")
    axes[1].set_title("share of unknown words")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write(report: Report, path: Path, title: str) -> Path:
    """An HTML report with the measures and the figure, and the figure as PNG beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    png = report.figures.get("drift.png", b"")
    path.with_suffix(".png").write_bytes(png)
    rows = "".join(
        f"<tr class='{'over' if m.over else 'ok'}'><td>{html.escape(m.name)}</td><td>{m.value:.4f}</td>"
        f"<td>{m.limit:.4f}</td><td>{'OVER' if m.over else 'ok'}</td><td>{html.escape(m.detail)}</td></tr>"
        for m in report.measures
    )
    image = base64.b64encode(png).decode()
    path.write_text(
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font:14px sans-serif;margin:2rem}td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd}"
        ".over td{color:#a4262c;font-weight:600}</style>"
        f"<h1>{html.escape(title)}</h1><p>{report.recent_rows} recent descriptions against "
        f"{report.reference_rows} of the validation split.</p>"
        "<table><tr><th>measure</th><th>value</th><th>limit</th><th></th><th>detail</th></tr>"
        f"{rows}</table><img alt='score and unknown-word distributions' src='data:image/png;base64,{image}'>",
        encoding="utf-8",
    )
    return path
