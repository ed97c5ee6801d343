"""Train every candidate on the corpus, evaluate, log one MLflow run each, and register the best."""

from __future__ import annotations

import ast
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress

from models import registry, store
from models.controllist import ANNEX_FILE
from models.controllist import load as load_controllist
from models.encoder import memo
from models.flagger import PARTS, Flagger, build
from models.settings import PROJECT_DIR, Settings
from models.text import prepare
from models.watchlist import load as load_watchlist
from training import corpus, report
from training.embeddings import EmbeddingCache
from training.evaluate import Evaluation, as_json, evaluate, read_labelled

CANDIDATES: dict[str, tuple[str, ...]] = {
    "tfidf": ("tfidf",),
    "embedding": ("embedding",),
    "watchlist": ("watchlist",),
    "retrieval": ("retrieval",),
    "flagger": PARTS,
}
SETS = ("validation", "test", "dev_eval")


@dataclass
class Outcome:
    """One trained candidate and how it did."""

    name: str
    flagger: Flagger
    evaluations: dict[str, Evaluation]
    run_id: str
    seconds: float


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (``tfidf__clf__C=2``) into typed estimator parameters."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"parameter {pair!r} must look like KEY=VALUE, e.g. tfidf__clf__C=2")
        try:
            params[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            params[key] = raw
    return params


def git_commit() -> str:
    """The project's current commit, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def _frame_for_eval(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={"text": "description"})


def fit_candidate(
    parts: tuple[str, ...],
    params: dict[str, Any],
    frames: dict[str, pd.DataFrame],
    embeddings: dict[str, np.ndarray],
    encoder: Callable[[Sequence[str]], np.ndarray],
    settings: Settings,
) -> Flagger:
    """Fit on the training split and calibrate on validation."""
    controls = load_controllist(settings.data_dir)
    watchlist = load_watchlist(settings.data_dir)
    flagger = build(parts=parts, controls=controls, watchlist=watchlist, **params)
    train, validation = frames["train"], frames["validation"]
    uses = flagger.uses_embeddings
    flagger.fit(
        train["text"].tolist(),
        train["label"].to_numpy(),
        categories=train["category"].tolist(),
        provisions=train["provision"].tolist(),
        groups=train["group"].tolist(),
        encoder=encoder,
    )
    flagger.calibrate(
        validation["text"].tolist(), validation["label"].to_numpy(), embeddings.get("validation") if uses else None
    )
    return flagger


def run(
    settings: Settings,
    params: dict[str, Any] | None = None,
    candidates: Sequence[str] | None = None,
    register: bool = True,
    console: Console | None = None,
    robustness_sample: int = 300,
    frames: dict[str, pd.DataFrame] | None = None,
    tags: dict[str, str] | None = None,
) -> list[Outcome]:
    """The whole training run; returns the outcomes, best first.

    ``frames`` replaces the corpus read from disk (retraining adds seizures and decisions to it);
    ``tags`` go on every run (the data set versions that went in).
    """
    console = console or Console()
    params = params or {}
    names = list(candidates or CANDIDATES)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidate(s) {unknown}; choose from {', '.join(CANDIDATES)}")
    frames = frames if frames is not None else corpus.load(settings.corpus)
    digest = corpus.digest(frames)
    dev = read_labelled(settings.data_dir / "eval" / "dev_eval.csv")
    sets = {
        "validation": _frame_for_eval(frames["validation"]),
        "test": _frame_for_eval(frames["test"]),
        "dev_eval": dev,
    }
    cache = EmbeddingCache(PROJECT_DIR / "var" / "cache")
    embeddings: dict[str, np.ndarray] = {}
    if any(Flagger(parts=CANDIDATES[n]).uses_embeddings for n in names):
        with console.status("encoding the corpus (cached after the first run)"):
            # The training split is encoded inside fit, only for the rows the embedding parts use.
            for split in ("validation", "test"):
                embeddings[split] = cache(prepare(frames[split]["text"].tolist()))
    registry.configure(settings.tracking)
    commit = git_commit()
    outcomes: list[Outcome] = []
    with Progress(console=console) as progress, memo(cache.lookup):
        task = progress.add_task("training candidates", total=len(names))
        for name in names:
            started = time.perf_counter()
            parts = CANDIDATES[name]
            run_tags = {"candidate": name, "git_commit": commit, "corpus_digest": digest, **(tags or {})}
            with registry.start_run(name, run_tags) as active:
                flagger = fit_candidate(parts, params, frames, embeddings, cache, settings)
                evaluations = {}
                for set_name, frame in sets.items():
                    evaluations[set_name] = evaluate(
                        flagger, frame, set_name, seed=settings.seed, robustness_sample=robustness_sample
                    )
                seconds = time.perf_counter() - started
                _log_run(flagger, name, params, frames, digest, evaluations, seconds)
                outcomes.append(Outcome(name, flagger, evaluations, active.info.run_id, seconds))
            progress.advance(task)
    outcomes.sort(key=lambda o: o.evaluations["validation"].metrics["pr_auc"], reverse=True)
    if register:
        best = outcomes[0]
        version = register_best(best, settings, frames)
        console.print(f"registered {best.name} as {settings.model_name} version {version}")
    return outcomes


def _log_run(
    flagger: Flagger,
    name: str,
    params: dict[str, Any],
    frames: dict[str, pd.DataFrame],
    digest: str,
    evaluations: dict[str, Evaluation],
    seconds: float,
) -> None:
    registry.log_params({"candidate": name, "parts": ",".join(flagger.parts), **params})
    registry.log_params({"threshold_target_recall": flagger.target_recall})
    for split in ("train", "validation", "test"):
        registry.log_corpus(frames[split], f"corpus-{split}", digest, context=split)
    for set_name, e in evaluations.items():
        registry.log_metrics(e.metrics, prefix=f"{set_name}_")
    registry.log_metrics({"train_seconds": seconds, "threshold": flagger.threshold_})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        shown = list(evaluations.values())
        report.pr_curve(shown, flagger.threshold_, out / "pr_curve.png")
        report.calibration(shown, out / "calibration.png")
        report.category_recall(shown, out / "category_recall.png")
        tables = [report.confusion(e).assign(set=e.name) for e in shown]
        pd.concat(tables).to_csv(out / "confusion.csv")
        metrics = {k: e.metrics for k, e in evaluations.items()}
        counts = {s: len(f) for s, f in frames.items()}
        card = report.model_card(name, flagger.parts, metrics, flagger.threshold_, digest, counts)
        (out / "model_card.md").write_text(card, encoding="utf-8")
        for k, e in evaluations.items():
            registry.write_json(out / f"evaluation_{k}.json", as_json(e))
        for path in sorted(out.iterdir()):
            registry.log_artifact(path, "report")


def register_best(best: Outcome, settings: Settings, frames: dict[str, pd.DataFrame]) -> str:
    """Save the best candidate, log it as a pyfunc in its run, register it, and set the aliases."""
    example = frames["validation"]["text"].head(3).tolist()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "flagger"
        metadata = {"candidate": best.name, "run_id": best.run_id, "metrics": best.evaluations["validation"].metrics}
        store.save(best.flagger, model_dir, annex=settings.data_dir / ANNEX_FILE, metadata=metadata)
        with registry.start_run_by_id(best.run_id):
            version = registry.log_model(model_dir, example, registered_name=settings.model_name)
    if version is None:
        raise RuntimeError("MLflow did not return a model version")
    registry.set_alias(settings.model_name, registry.CHALLENGER, version)
    if registry.by_alias(settings.model_name, registry.CHAMPION) is None:
        registry.move_champion(settings.model_name, version)
    return version


def comparison(outcomes: Sequence[Outcome]) -> pd.DataFrame:
    """Headline metrics, one row per set and metric, one column per candidate (best first)."""
    rows = []
    for set_name in SETS:
        for metric in ("pr_auc", "roc_auc", "recall_at_5pct_fpr", "recall", "fpr", "precision", "ece"):
            row: dict[str, Any] = {"set": set_name, "metric": metric}
            for o in outcomes:
                row[o.name] = o.evaluations[set_name].metrics.get(metric, float("nan"))
            rows.append(row)
    rows.append({"set": "", "metric": "train seconds", **{o.name: float(round(o.seconds)) for o in outcomes}})
    return pd.DataFrame(rows)
