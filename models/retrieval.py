"""Nearest Annex I provisions for a description, by embedding and lexical similarity.

The index holds each provision's text read with its parents (a leaf such as ``2B350.d.3 Glass``
means nothing without ``2B350.d Heat exchangers``), plus exemplars: positive training
descriptions in trade wording, each labelled with the provision it derives from. A description
is scored against both and each provision keeps its best similarity, so trade wording finds the
regulation's wording through the exemplars and an unseen item can still land on the text.

Exemplars are discounted (``exemplar_margin``): on goods never seen in training, another item's
wording points at the wrong provision more often than the regulation's own text does (validation,
entry of the cited provision right at 1: 0.46 with exemplars at par, 0.66 discounted by 0.2, at a
lexical weight of 0.7 chosen the same way; 0.60 from Annex text alone at the old weight of 0.35).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from models.controllist import ControlList, Provision
from models.encoder import encode
from models.text import prepare


@dataclass(frozen=True)
class Match:
    """A cited provision and how closely the description resembles it."""

    code: str
    similarity: float


def provision_text(p: Provision, controls: ControlList, limit: int = 600) -> str:
    """A provision read with its parents' text, trimmed to what the encoder can take."""
    chain = [controls.get(c).text for c in p.parents] + [p.text]
    text = " ".join(chain)
    return text[-limit:] if len(text) > limit else text


def indexable(controls: ControlList) -> list[Provision]:
    """Provisions worth citing for goods: systems, equipment and materials (groups A to C), not 'Not used'."""
    return [p for p in controls if p.group in "ABC" and not p.text.lower().startswith(("not used", "see "))]


class ProvisionIndex(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Nearest provisions; as a classifier, the score of a plain nearest-provision search."""

    def __init__(
        self,
        exemplars_per_provision: int = 8,
        lexical_weight: float = 0.7,
        exemplar_margin: float = 0.2,
        seed: int = 13,
        controls: Any = None,
    ) -> None:
        self.exemplars_per_provision = exemplars_per_provision
        self.lexical_weight = lexical_weight
        self.exemplar_margin = exemplar_margin
        self.seed = seed
        self.controls = controls

    def fit(
        self,
        X: Sequence[str],
        y: Sequence[int],
        provisions: Sequence[str] | None = None,
        embeddings: np.ndarray | None = None,
        encoder: Callable[[Sequence[str]], np.ndarray] = encode,
    ) -> ProvisionIndex:
        """Index Annex I texts and up to ``exemplars_per_provision`` positive descriptions per provision."""
        if self.controls is None:
            raise ValueError("ProvisionIndex needs controls=ControlList to index Annex I")
        controls: ControlList = self.controls
        texts = list(X)
        labels = np.asarray(y)
        cited = list(provisions) if provisions is not None else [""] * len(texts)
        rng = np.random.default_rng(self.seed)
        chosen: list[int] = []
        by_code: dict[str, list[int]] = {}
        for i, (label, code) in enumerate(zip(labels, cited, strict=True)):
            if label == 1 and code:
                by_code.setdefault(code, []).append(i)
        for code in sorted(by_code):
            rows = by_code[code]
            take = rng.choice(len(rows), size=min(len(rows), self.exemplars_per_provision), replace=False)
            chosen += [rows[int(k)] for k in sorted(take)]
        annex = indexable(controls)
        annex_texts = prepare(provision_text(p, controls) for p in annex)
        exemplar_texts = prepare(texts[i] for i in chosen)
        exemplar_vectors = embeddings[chosen] if embeddings is not None else encoder(exemplar_texts)
        codes = [p.code for p in annex] + [cited[i] for i in chosen]
        vectors = np.vstack([encoder(annex_texts), exemplar_vectors])
        # Entries sorted by code, so each provision's best similarity is one reduceat over a contiguous run.
        order = sorted(range(len(codes)), key=lambda i: codes[i])
        self.codes_ = [codes[i] for i in order]
        self.is_annex_ = np.array([i < len(annex) for i in order])
        self.texts_ = [(annex_texts + exemplar_texts)[i] for i in order]
        self.vectors_ = vectors[order].astype(np.float16)
        self._index_lexical()
        # The nearest-provision baseline: a calibrated function of the best similarity to Annex I text.
        # (Exemplars are these very rows; scoring them against themselves would teach nothing.)
        self.head_ = LogisticRegression(class_weight="balanced").fit(self.features(texts, embeddings)[:, :1], labels)
        self.classes_ = self.head_.classes_
        return self

    def _index_lexical(self) -> None:
        """Derived state: the lexical index and the run of entries per code (rebuilt at load)."""
        self.lexical_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True, min_df=1)
        self.lexical_matrix_ = self.lexical_.fit_transform(self.texts_).T.tocsr()
        self.unique_codes_ = sorted(set(self.codes_))
        self.starts_ = np.searchsorted(np.array(self.codes_), np.array(self.unique_codes_))
        self.dense_ = self.vectors_.astype(np.float32).T

    def similarities(
        self, X: Sequence[str], embeddings: np.ndarray | None = None, only: np.ndarray | None = None, chunk: int = 1024
    ) -> np.ndarray:
        """Per description, the best similarity to each provision code (columns in ``unique_codes_``).

        ``only`` masks index entries (``is_annex_`` keeps the regulation's own text).
        """
        texts = prepare(X)
        vectors = embeddings if embeddings is not None else encode(texts)
        out = np.empty((len(texts), len(self.unique_codes_)), dtype=np.float32)
        for lo in range(0, len(texts), chunk):
            hi = lo + chunk
            dense = vectors[lo:hi].astype(np.float32) @ self.dense_
            lexical = (self.lexical_.transform(texts[lo:hi]) @ self.lexical_matrix_).toarray()
            combined = (1 - self.lexical_weight) * dense + self.lexical_weight * lexical
            # An exemplar is another item's trade wording: it wins only when far closer than any Annex text.
            combined[:, ~self.is_annex_] -= self.exemplar_margin
            if only is not None:
                combined[:, ~only] = -1.0
            out[lo:hi] = np.maximum.reduceat(combined, self.starts_, axis=1)
        return out

    def nearest(self, X: Sequence[str], k: int = 3, embeddings: np.ndarray | None = None) -> list[list[Match]]:
        """The ``k`` provisions each description resembles most."""
        sims = self.similarities(X, embeddings)
        top = np.argsort(-sims, axis=1)[:, :k]
        return [[Match(self.unique_codes_[j], float(sims[i, j])) for j in row] for i, row in enumerate(top)]

    def features(self, X: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """The best and second-best similarity to Annex I text (exemplars excluded), per description."""
        return self.annex_top(X, embeddings)[0]

    def annex_top(self, X: Sequence[str], embeddings: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
        """The best and second-best similarity to Annex I text, and the code of the best, per description."""
        sims = self.similarities(X, embeddings, only=self.is_annex_)
        order = np.argsort(-sims, axis=1)[:, :2]
        top: np.ndarray = np.take_along_axis(sims, order, axis=1)
        return top, [self.unique_codes_[j] for j in order[:, 0]]

    def predict_proba(self, X: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        proba: np.ndarray = self.head_.predict_proba(self.features(X, embeddings)[:, :1])
        return proba
