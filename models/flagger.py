"""The flagger: TF-IDF, sentence embedding, watch list and provision retrieval, stacked and calibrated.

Every candidate is a ``Flagger`` with a subset of ``parts``; the default uses all four. Each part
contributes features to a small logistic-regression stacker, trained on out-of-fold predictions
of the training split (grouped, so an item never scores itself). ``calibrate`` then fits a Platt
scaling on the validation split and picks the decision threshold there for the target recall.
A category head names the family of controlled goods a description resembles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_curve
from sklearn.model_selection import GroupKFold
from sklearn.neural_network import MLPClassifier

from models.encoder import encode
from models.normalise import Normalised, normalise
from models.quantities import Check, Thresholds, checks, parse
from models.retrieval import Match, ProvisionIndex
from models.text import prepare
from models.tfidf import WORD, Token, attribute
from models.tfidf import build as build_tfidf
from models.watchlist import Hit

PARTS = ("tfidf", "embedding", "watchlist", "retrieval")
# Below this many training rows the embedding head is linear and the stacker leaves out the threshold check.
SMALL = 2000


@dataclass
class Result:
    """A scored description and, when asked, why."""

    score: float
    flagged: bool
    category: str
    categories: dict[str, float]
    provisions: list[Match] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Per cited provision (same order), what the stated quantities say against its numeric limits.
    checks: list[Check] = field(default_factory=list)
    # Drift signals: the share of words the TF-IDF vocabulary has never seen, and how far the
    # description lies from the nearest training description (None when it skipped the encoder).
    oov: float = 0.0
    novelty: float | None = None


@dataclass
class Inputs:
    """What scoring derives from the descriptions once: normalised text, TF-IDF, hits, embeddings, the gate."""

    normalised: list[Normalised]
    tfidf_logit: np.ndarray | None
    hits: list[list[Hit]] | None
    embeddings: np.ndarray | None
    passed: np.ndarray
    matrix: Any = None


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    out: np.ndarray = np.log(p / (1 - p))
    return out


def recall_threshold(y: np.ndarray, scores: np.ndarray, recall: float) -> float:
    """The highest threshold whose recall on (y, scores) is at least ``recall``."""
    _, recalls, thresholds = precision_recall_curve(y, scores)
    ok = np.where(recalls[:-1] >= recall)[0]
    if not len(ok):
        return float(thresholds.min())
    return float(thresholds[ok.max()])


def embedding_head(seed: int = 13, rows: int | None = None) -> MLPClassifier | LogisticRegression:
    """The default embedding head: one hidden layer of 256 relu units with early stopping.

    On fewer than ``SMALL`` rows a hidden layer only memorises them (and, stacked, drowns the other
    parts' evidence), so a small training set gets a class-weighted logistic regression instead.
    """
    if rows is not None and rows < SMALL:
        return LogisticRegression(C=4.0, class_weight="balanced", max_iter=3000)
    return MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, max_iter=200, early_stopping=True, random_state=seed)


def stacker() -> LogisticRegression:
    """The default stacker over the parts' evidence (class weights are set at fit)."""
    return LogisticRegression(C=1.0, max_iter=2000)


def category_head() -> LogisticRegression:
    """The default category head over TF-IDF and embedding features of controlled descriptions."""
    return LogisticRegression(C=8.0, max_iter=3000, class_weight="balanced")


def head_logit(head: Any, embeddings: np.ndarray) -> np.ndarray:
    """The embedding head's log-odds: a linear head's margin, or an MLP's output before the sigmoid."""
    if not hasattr(head, "coefs_"):
        out: np.ndarray = head.decision_function(embeddings)
        return out
    z = np.asarray(embeddings, dtype=np.float64)
    for i, (w, b) in enumerate(zip(head.coefs_, head.intercepts_, strict=True)):
        z = z @ w + b
        if i < len(head.coefs_) - 1:
            z = np.maximum(z, 0.0)  # relu, MLPClassifier's default
    return z.ravel()


def monotone_fit(model: LogisticRegression, X: np.ndarray, y: np.ndarray, signs: np.ndarray) -> None:
    """Refit ``model``'s coefficients with the sign each of ``signs`` asks (+1 >= 0, -1 <= 0, 0 free; balanced, L2).

    On little data, correlated parts can take opposite signs; a part's evidence counted against it
    would also turn its explanation upside down, so the stacker is kept monotone in each part.
    """
    from scipy.optimize import minimize

    y = np.asarray(y, dtype=float)
    weights = np.where(y == 1, len(y) / (2 * max(y.sum(), 1)), len(y) / (2 * max((1 - y).sum(), 1)))
    penalty = 1.0 / (2 * float(model.C))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        z = X @ w + b
        p = 1.0 / (1.0 + np.exp(-z))
        value = float(np.sum(weights * (np.logaddexp(0, z) - y * z)) + penalty * w @ w)
        residual = weights * (p - y)
        return value, np.append(X.T @ residual + 2 * penalty * w, residual.sum())

    signs = np.asarray(signs)
    coef = model.coef_[0]
    start = np.append(np.where(signs * coef < 0, 0.0, coef), 0.0)
    allowed = {1: (0.0, None), -1: (None, 0.0), 0: (None, None)}
    bounds = [allowed[int(sign)] for sign in signs] + [(None, None)]
    fitted = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    model.coef_ = fitted.x[:-1].reshape(1, -1)
    model.intercept_ = fitted.x[-1:].copy()


class Flagger(BaseEstimator):  # type: ignore[misc]
    """A calibrated screening model over the chosen ``parts``."""

    def __init__(
        self,
        parts: tuple[str, ...] = PARTS,
        tfidf: Any = None,
        embedding_head: Any = None,
        retrieval: Any = None,
        stacker: Any = None,
        category_head: Any = None,
        folds: int = 3,
        target_recall: float = 0.95,
        embedding_rows: int | None = 24_000,
        seed: int = 13,
        controls: Any = None,
        watchlist: Any = None,
        gate_recall: float | None = 0.995,
        thresholds: bool = True,
    ) -> None:
        self.parts = parts
        self.tfidf = tfidf
        self.embedding_head = embedding_head
        self.retrieval = retrieval
        self.stacker = stacker
        self.category_head = category_head
        self.folds = folds
        self.target_recall = target_recall
        self.embedding_rows = embedding_rows
        self.seed = seed
        self.controls = controls
        self.watchlist = watchlist
        self.gate_recall = gate_recall
        self.thresholds = thresholds

    # ----- construction ------------------------------------------------------------------------

    def _defaults(self) -> None:
        unknown = set(self.parts) - set(PARTS)
        if unknown or not self.parts:
            raise ValueError(f"parts must be a non-empty subset of {PARTS}; got {self.parts}")
        if ("watchlist" in self.parts) and self.watchlist is None:
            raise ValueError("the watchlist part needs watchlist=Watchlist")
        if ("retrieval" in self.parts) and self.controls is None:
            raise ValueError("the retrieval part needs controls=ControlList")
        self.tfidf_ = clone(self.tfidf) if self.tfidf is not None else build_tfidf()
        self.embedding_head_ = clone(self.embedding_head) if self.embedding_head is not None else None
        self.retrieval_ = (
            clone(self.retrieval) if self.retrieval is not None else ProvisionIndex(controls=self.controls)
        )
        if self.retrieval_.controls is None:
            self.retrieval_.set_params(controls=self.controls)
        self.stacker_ = clone(self.stacker) if self.stacker is not None else stacker()
        self.category_head_ = clone(self.category_head) if self.category_head is not None else category_head()

    @property
    def checks_quantities(self) -> bool:
        """Whether the stacker weighs the threshold check (fitted with ``thresholds`` and enough rows)."""
        return bool(getattr(self, "thresholds_", self.thresholds)) and "retrieval" in self.parts

    @property
    def uses_embeddings(self) -> bool:
        """Whether scoring needs the sentence encoder."""
        return bool({"embedding", "retrieval"} & set(self.parts))

    @property
    def gated(self) -> bool:
        """Whether a cheap TF-IDF gate decides which descriptions are worth the encoder."""
        return self.uses_embeddings and "tfidf" in self.parts and self.gate_recall is not None

    def _passes(self, tfidf_logit: np.ndarray | None, hits: Sequence[Sequence[Hit]] | None, n: int) -> np.ndarray:
        """Which descriptions go through the encoder: above the gate, or naming a watch-list substance."""
        if not self.gated or tfidf_logit is None:
            return np.ones(n, dtype=bool)
        passed: np.ndarray = np.asarray(tfidf_logit) >= getattr(self, "gate_", -np.inf)
        if hits is not None:
            passed |= np.array([bool(h) for h in hits], dtype=bool)
        return passed

    def _inputs(self, texts: Sequence[str], embeddings: np.ndarray | None = None, need_hits: bool = False) -> Inputs:
        """Normalised texts, TF-IDF logits, hits, embeddings (cascaded) and which rows passed the gate.

        The cascade: a description the TF-IDF part scores far below every controlled description it was
        calibrated on (``gate_recall`` of the validation positives lie above the gate), and that names
        no watch-list substance, skips the encoder; its embedding features are those of the mean ordinary
        description. Training evaluates and calibrates the model with the cascade in place, so the
        reported metrics are those of what is served.
        """
        normalised = [normalise(t) for t in texts]
        matrix = tfidf_logit = None
        if "tfidf" in self.parts:
            # One TF-IDF transform serves the logit and the category head (the pipeline would redo it).
            matrix = self._tfidf_matrix([n.text for n in normalised])
            clf = self.tfidf_.named_steps["clf"]
            tfidf_logit = np.asarray(matrix @ clf.coef_[0] + clf.intercept_[0]).ravel()
        hits = self._hits(texts, normalised) if (need_hits or "watchlist" in self.parts) else None
        passed = self._passes(tfidf_logit, hits, len(texts))
        if self.uses_embeddings:
            default = getattr(self, "default_embedding_", None)
            if default is None or passed.all():
                embeddings = embeddings if embeddings is not None else encode([n.text for n in normalised])
            elif embeddings is None:
                embeddings = np.tile(default, (len(texts), 1)).astype(np.float32)
                rows = np.flatnonzero(passed)
                if len(rows):
                    embeddings[rows] = encode([normalised[i].text for i in rows])
            else:
                embeddings = np.where(passed[:, None], embeddings, default).astype(np.float32)
        return Inputs(normalised, tfidf_logit, hits, embeddings, passed, matrix)

    # ----- features ----------------------------------------------------------------------------

    def _hits(self, texts: Sequence[str], normalised: Sequence[Normalised]) -> list[list[Hit]]:
        if self.watchlist is None:
            return [[] for _ in texts]
        return [self.watchlist.match(text, norm) for text, norm in zip(texts, normalised, strict=True)]

    def _watch_features(self, hits_per_text: Sequence[Sequence[Hit]]) -> np.ndarray:
        rows = []
        for hits in hits_per_text:
            rows.append(
                [
                    float(any(h.by != "abbreviation" for h in hits)),
                    float(any(h.by == "abbreviation" for h in hits)),
                    float(any(h.by == "cas" for h in hits)),
                ]
            )
        return np.asarray(rows, dtype=np.float64).reshape(len(hits_per_text), 3)

    def _features(
        self,
        texts: Sequence[str],
        normalised: Sequence[Normalised],
        embeddings: np.ndarray | None,
        tfidf_logit: np.ndarray | None = None,
        embedding_logit: np.ndarray | None = None,
        hits: Sequence[Sequence[Hit]] | None = None,
    ) -> np.ndarray:
        columns: list[np.ndarray] = []
        if "tfidf" in self.parts:
            if tfidf_logit is None:
                tfidf_logit = self.tfidf_.decision_function(list(texts))
            columns.append(np.asarray(tfidf_logit).reshape(-1, 1))
        if "embedding" in self.parts:
            if embedding_logit is None:
                assert embeddings is not None, "the embedding part needs embeddings"
                embedding_logit = head_logit(self.embedding_head_, embeddings)
            columns.append(np.asarray(embedding_logit).reshape(-1, 1))
        if "watchlist" in self.parts:
            columns.append(self._watch_features(hits if hits is not None else self._hits(texts, normalised)))
        if "retrieval" in self.parts:
            top, codes = self.retrieval_.annex_top(list(texts), embeddings)
            columns.append(top)
            if self.checks_quantities:
                index = self._limit_index()
                nearest = [index.check(parse(n.text), code) for n, code in zip(normalised, codes, strict=True)]
                columns.append(np.array([[c.failed_share, float(c.status == "met")] for c in nearest]).reshape(-1, 2))
        return np.hstack(columns)

    def _limit_index(self) -> Thresholds:
        """Annex I's numeric limits, read once per model from ``controls`` (derived, so never saved)."""
        if getattr(self, "_limits", None) is None:
            self._limits = Thresholds(self.controls)
        return self._limits

    def _monotone(self) -> np.ndarray:
        """The sign each stacker column must keep: +1 for each part's own evidence, never held against it;
        -1 for a stated quantity that rules the nearest provision out; 0 free.

        (The second-best provision similarity stays free: a clear best match is what counts there.)
        """
        signs: list[int] = []
        if "tfidf" in self.parts:
            signs.append(1)
        if "embedding" in self.parts:
            signs.append(1)
        if "watchlist" in self.parts:
            signs += [1, 1, 1]
        if "retrieval" in self.parts:
            signs += [1, 0]
            if self.checks_quantities:
                signs += [-1, 1]
        return np.asarray(signs, dtype=int)

    def _tfidf_matrix(self, texts: list[str]) -> Any:
        """The TF-IDF features of normalised texts: the union's vectorizers called directly (the union's
        own transform adds a few milliseconds of bookkeeping per call, which single requests feel)."""
        union = self.tfidf_.named_steps["features"]
        return sp.hstack([vectorizer.transform(texts) for _, vectorizer in union.transformer_list]).tocsr()

    def _category_matrix(
        self,
        texts: Sequence[str],
        normalised: Sequence[Normalised],
        embeddings: np.ndarray | None,
        matrix: Any = None,
    ) -> Any:
        blocks: list[Any] = []
        if "tfidf" in self.parts:
            blocks.append(matrix if matrix is not None else self._tfidf_matrix([n.text for n in normalised]))
        if embeddings is not None and self.uses_embeddings:
            blocks.append(sp.csr_matrix(embeddings))
        if not blocks:
            blocks.append(sp.csr_matrix(self._watch_features(self._hits(texts, normalised))))
        return sp.hstack(blocks).tocsr()

    # ----- fitting -----------------------------------------------------------------------------

    def fit(
        self,
        X: Sequence[str],
        y: Sequence[int] | np.ndarray,
        *,
        categories: Sequence[str],
        provisions: Sequence[str],
        groups: Sequence[str],
        embeddings: np.ndarray | None = None,
        encoder: Callable[[Sequence[str]], np.ndarray] = encode,
    ) -> Flagger:
        """Fit the parts on the training split, the stacker on their out-of-fold scores, and the category head."""
        self._defaults()
        all_texts = list(X)
        all_labels = np.asarray(y, dtype=int)
        # The encoder is the slow part: the stacker and every embedding part learn from a stratified
        # subset of rows (all of them when the training split is small); TF-IDF sees every row.
        keep = np.arange(len(all_texts))
        if self.uses_embeddings and self.embedding_rows is not None and len(keep) > self.embedding_rows:
            rng = np.random.default_rng(self.seed)
            keep = np.sort(rng.choice(len(keep), size=self.embedding_rows, replace=False))
            if embeddings is not None and len(embeddings) == len(all_texts):
                embeddings = embeddings[keep]
        all_groups = list(groups)
        texts = [all_texts[i] for i in keep]
        labels = all_labels[keep]
        group_list = [all_groups[i] for i in keep]
        if self.uses_embeddings and embeddings is None:
            embeddings = encoder(prepare(texts))
        normalised = [normalise(t) for t in texts]
        # Two more stacker columns are two more ways to fit noise: a small training set goes without.
        self.thresholds_ = bool(self.thresholds) and len(texts) >= SMALL
        oof_tfidf = np.zeros(len(all_texts))
        oof_embed = np.zeros(len(texts))
        # A lone part needs no stacking: its stacker is a monotone rescaling that Platt redoes on
        # validation, so it is fitted once, on its in-sample scores, without out-of-fold refits.
        stacked = len(self.parts) > 1
        if "tfidf" in self.parts:
            if stacked:
                splitter = GroupKFold(n_splits=self.folds)
                for train_idx, held_idx in splitter.split(all_texts, all_labels, groups=all_groups):
                    model = clone(self.tfidf_).fit([all_texts[i] for i in train_idx], all_labels[train_idx])
                    oof_tfidf[held_idx] = model.decision_function([all_texts[i] for i in held_idx])
            self.tfidf_.fit(all_texts, all_labels)
            if not stacked:
                oof_tfidf = self.tfidf_.decision_function(all_texts)
        if "embedding" in self.parts:
            assert embeddings is not None
            if self.embedding_head_ is None:
                self.embedding_head_ = embedding_head(self.seed, len(texts))
            if stacked:
                for train_idx, held_idx in GroupKFold(n_splits=self.folds).split(texts, labels, groups=group_list):
                    head = clone(self.embedding_head_).fit(embeddings[train_idx], labels[train_idx])
                    oof_embed[held_idx] = head_logit(head, embeddings[held_idx])
            self.embedding_head_.fit(embeddings, labels)
            if not stacked:
                oof_embed = head_logit(self.embedding_head_, embeddings)
        if "retrieval" in self.parts:
            all_provisions = list(provisions)
            cited = [all_provisions[i] for i in keep]
            self.retrieval_.fit(texts, list(labels), provisions=cited, embeddings=embeddings, encoder=encoder)
        if embeddings is not None:
            # A sample of what training saw, to tell how far a new description lies from all of it.
            pick = np.random.default_rng(self.seed).choice(
                len(embeddings), size=min(2000, len(embeddings)), replace=False
            )
            self.reference_ = embeddings[np.sort(pick)].astype(np.float16)
            # What a gated description stands in for: the mean ordinary description, unit length.
            mean = embeddings[labels == 0].mean(axis=0) if (labels == 0).any() else embeddings.mean(axis=0)
            self.default_embedding_ = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
        self.gate_ = -np.inf
        features = self._features(texts, normalised, embeddings, oof_tfidf[keep], oof_embed)
        self.scale_ = features.std(axis=0) + 1e-9
        self.stacker_.set_params(class_weight="balanced")
        self.stacker_.fit(features / self.scale_, labels)
        signs = self._monotone()
        if stacked and len(texts) < SMALL:
            # A few dozen out-of-fold scores cannot weigh the parts against each other (whichever is
            # cleanest on them takes all the weight): each part's standardised evidence counts once,
            # and Platt scaling on validation turns the sum into a probability.
            self.stacker_.coef_ = np.where(signs > 0, 1.0, 0.0).reshape(1, -1)
            self.stacker_.intercept_ = np.array([-float(np.median((features / self.scale_) @ self.stacker_.coef_[0]))])
        elif (self.stacker_.coef_[0] * signs < 0).any():
            monotone_fit(self.stacker_, features / self.scale_, labels, signs)
        cats = np.asarray(categories)[keep]
        positive = labels == 1
        matrix = self._category_matrix(
            [t for t, p in zip(texts, positive, strict=True) if p],
            [n for n, p in zip(normalised, positive, strict=True) if p],
            embeddings[positive] if embeddings is not None else None,
        )
        self.category_head_.fit(matrix, cats[positive])
        self.classes_ = np.array([0, 1])
        self.platt_ = (1.0, 0.0)
        self.threshold_ = 0.5
        return self

    def _calibrated(self, margin: np.ndarray) -> np.ndarray:
        a, b = self.platt_
        out: np.ndarray = 1.0 / (1.0 + np.exp(-(a * margin + b)))
        return out

    def calibrate(
        self, X: Sequence[str], y: Sequence[int] | np.ndarray, embeddings: np.ndarray | None = None
    ) -> Flagger:
        """Platt scaling and the decision threshold, on held-out (validation) data."""
        texts = list(X)
        labels = np.asarray(y)
        if self.uses_embeddings and embeddings is None:
            embeddings = encode(prepare(texts))
        self.gate_ = -np.inf
        if self.gated and (labels == 1).any():
            assert self.gate_recall is not None
            logits = self.tfidf_.decision_function(texts)
            self.gate_ = float(np.quantile(logits[labels == 1], 1.0 - self.gate_recall))
        z = self.decision_function(texts, embeddings)
        platt = LogisticRegression(C=1e4, max_iter=2000).fit(z.reshape(-1, 1), np.asarray(y))
        self.platt_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
        scores = self.predict_proba(texts, embeddings)[:, 1]
        self.threshold_ = recall_threshold(np.asarray(y), scores, self.target_recall)
        return self

    # ----- scoring -----------------------------------------------------------------------------

    def decision_function(self, X: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        texts = list(X)
        got = self._inputs(texts, embeddings)
        features = self._features(texts, got.normalised, got.embeddings, got.tfidf_logit, hits=got.hits)
        out: np.ndarray = self.stacker_.decision_function(features / self.scale_)
        return out

    def predict_proba(self, X: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        p = self._calibrated(self.decision_function(X, embeddings))
        return np.column_stack([1 - p, p])

    def predict(self, X: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return (self.predict_proba(X, embeddings)[:, 1] >= self.threshold_).astype(int)

    def categorise(self, X: Sequence[str], embeddings: np.ndarray | None = None) -> list[dict[str, float]]:
        """Probability of each category of controlled goods, per description."""
        texts = list(X)
        got = self._inputs(texts, embeddings)
        return self._categorise(texts, got.normalised, got.embeddings, got.matrix)

    def _categorise(
        self,
        texts: Sequence[str],
        normalised: Sequence[Normalised],
        embeddings: np.ndarray | None,
        matrix: Any = None,
    ) -> list[dict[str, float]]:
        proba = self.category_head_.predict_proba(self._category_matrix(texts, normalised, embeddings, matrix))
        names = [str(c) for c in self.category_head_.classes_]
        return [dict(zip(names, map(float, row), strict=True)) for row in proba]

    def score(self, X: Sequence[str], explain: bool | str = False, threshold: float | None = None) -> list[Result]:
        """Score descriptions; with ``explain``, cite provisions, watch-list hits and the words that drove it.

        ``explain="flagged"`` explains only the flagged descriptions, in the same pass (what the
        review queue needs when the caller asked for scores alone).
        """
        texts = list(X)
        if not texts:
            return []
        cut = self.threshold_ if threshold is None else threshold
        got = self._inputs(texts, need_hits=bool(explain))
        normalised, hits, embeddings, passed = got.normalised, got.hits, got.embeddings, got.passed
        features = self._features(texts, normalised, embeddings, got.tfidf_logit, hits=hits)
        scores = self._calibrated(self.stacker_.decision_function(features / self.scale_))
        categories = self._categorise(texts, normalised, embeddings, got.matrix)
        wanted = scores >= cut if explain == "flagged" else np.full(len(texts), bool(explain))
        nearest: dict[int, list[Match]] = {}
        rows = np.flatnonzero(wanted)
        if len(rows) and "retrieval" in self.parts and embeddings is not None:
            # Citations need each description's own embedding, gated or not; the score does not.
            cited = embeddings[rows].copy()
            gated = [k for k, i in enumerate(rows) if not passed[i]]
            if gated:
                cited[gated] = encode([normalised[rows[k]].text for k in gated])
            found = self.retrieval_.nearest([texts[i] for i in rows], k=3, embeddings=cited)
            nearest = dict(zip(rows.tolist(), found, strict=True))
        oov = self._oov(normalised)
        novelty = self._novelty(embeddings, passed)
        results = []
        for i, (text, norm) in enumerate(zip(texts, normalised, strict=True)):
            flagged = bool(scores[i] >= cut)
            result = Result(
                score=float(scores[i]),
                flagged=flagged,
                category=max(categories[i], key=categories[i].__getitem__) if flagged else "none",
                categories=categories[i],
                notes=list(norm.notes),
                oov=float(oov[i]),
                novelty=None if np.isnan(novelty[i]) else float(novelty[i]),
            )
            if wanted[i]:
                result.hits = hits[i] if hits is not None else []
                result.provisions = nearest.get(i, [])
                result.checks = checks(self._limit_index(), norm.text, [m.code for m in result.provisions])
                result.tokens = self._tokens(text, norm)
            results.append(result)
        return results

    def _oov(self, normalised: Sequence[Normalised]) -> np.ndarray:
        """Per description, the share of its words outside the TF-IDF word vocabulary (0 without TF-IDF)."""
        if "tfidf" not in self.parts:
            return np.zeros(len(normalised))
        if getattr(self, "_unigrams", None) is None:
            word = dict(self.tfidf_.named_steps["features"].transformer_list)["word"]
            self._unigrams = {t for t in word.vocabulary_ if " " not in t}
        out = np.zeros(len(normalised))
        for i, norm in enumerate(normalised):
            words = WORD.findall(norm.text.lower())
            out[i] = sum(w not in self._unigrams for w in words) / len(words) if words else 0.0
        return out

    def _novelty(self, embeddings: np.ndarray | None, passed: np.ndarray) -> np.ndarray:
        """1 - cosine similarity to the nearest training sample; NaN where the encoder did not run."""
        out = np.full(len(passed), np.nan)
        reference = getattr(self, "reference_", None)
        if embeddings is None or reference is None or not passed.any():
            return out
        rows = np.flatnonzero(passed)
        out[rows] = 1.0 - (embeddings[rows] @ reference.astype(np.float32).T).max(axis=1)
        return out

    def _tokens(self, text: str, norm: Normalised) -> list[Token]:
        if "tfidf" not in self.parts:
            return []
        union = self.tfidf_.named_steps["features"]
        coef = self.tfidf_.named_steps["clf"].coef_[0]
        # Express each word's share in the stacker's units: tfidf logit weight over its scale.
        scale = float(self.stacker_.coef_[0][0] / self.scale_[0]) * self.platt_[0]
        return [Token(t.text, t.start, t.end, t.weight * scale) for t in attribute(union, coef, text, norm)]


def build(**params: Any) -> Flagger:
    """A flagger with the given parameters (``parts=("tfidf",)``, ``tfidf__clf__C=2``, ``target_recall=0.97``)."""
    flagger = Flagger()
    # A nested parameter (``tfidf__clf__C``) needs the part it sets to exist: build the default first.
    defaults: dict[str, Callable[[], Any]] = {
        "tfidf": build_tfidf,
        "embedding_head": embedding_head,
        "retrieval": ProvisionIndex,
        "stacker": stacker,
        "category_head": category_head,
    }
    for name, make in defaults.items():
        if params.get(name) is None and any(key.startswith(f"{name}__") for key in params):
            params = {name: make(), **params}
    flagger.set_params(**params)
    return flagger
