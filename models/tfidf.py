"""Character and word TF-IDF into a class-weighted logistic regression: robust to typos, exactly explainable."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from models.normalise import Normalised, normalise
from models.text import Normalise

WORD = re.compile(r"(?u)\b\w+\b")
# A whitespace-separated token: what char_wb n-grams are drawn from.
PIECE = re.compile(r"\S+")
EDGE = re.compile(r"^[^\w]*(.*?)[^\w]*$", re.DOTALL)


def features(**params: Any) -> FeatureUnion:
    """The TF-IDF feature union on normalised text: char_wb 2-5 and word 1-2 grams."""
    union = FeatureUnion(
        [
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=300_000
                ),
            ),
            (
                "word",
                TfidfVectorizer(
                    analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=WORD.pattern
                ),
            ),
        ]
    )
    union.set_params(**params)
    return union


def build(**params: Any) -> Pipeline:
    """The tfidf candidate; parameters as ``features__char__min_df`` or ``clf__C``."""
    pipeline = Pipeline(
        [
            ("normalise", Normalise()),
            ("features", features()),
            ("clf", LogisticRegression(C=4.0, class_weight="balanced", max_iter=3000)),
        ]
    )
    pipeline.set_params(**params)
    return pipeline


@dataclass(frozen=True)
class Token:
    """A word of the description as sent and its share of the score's log-odds."""

    text: str
    start: int
    end: int
    weight: float


def attribute(
    union: FeatureUnion, coef: np.ndarray, description: str, normalised: Normalised | None = None
) -> list[Token]:
    """Split a linear model's TF-IDF logit exactly over the words of ``description``.

    ``coef`` holds one weight per feature of ``union`` (in its order). The unit is a
    whitespace-separated token, the unit char_wb n-grams live in: each n-gram's contribution
    (tf-idf value x weight) goes to the tokens that contain it, shared by occurrence; a word
    n-gram's is shared equally by its words. The token weights sum to the logit less the intercept.
    """
    norm = normalised or normalise(description)
    text = norm.text
    pieces = list(PIECE.finditer(text))
    if not pieces:
        return []
    totals = np.zeros(len(pieces))
    offset = 0
    for name, vectorizer in union.transformer_list:
        vocab: dict[str, int] = vectorizer.vocabulary_
        weights = coef[offset : offset + len(vocab)]
        offset += len(vocab)
        row = vectorizer.transform([text]).tocsr()
        contribution = {int(j): float(v) * float(weights[j]) for j, v in zip(row.indices, row.data, strict=True)}
        if not contribution:
            continue
        lo, hi = vectorizer.ngram_range
        # Every occurrence of every feature, as the piece indices it covers.
        places: defaultdict[int, list[list[int]]] = defaultdict(list)
        if name == "char":
            for p, m in enumerate(pieces):
                padded = f" {m.group(0)} "
                for n in range(lo, hi + 1):
                    for i in range(len(padded) - n + 1):
                        j = vocab.get(padded[i : i + n])
                        if j is not None and j in contribution:
                            places[j].append([p])
        else:
            words = [(p, w.group(0)) for p, m in enumerate(pieces) for w in WORD.finditer(m.group(0))]
            for n in range(lo, hi + 1):
                for i in range(len(words) - n + 1):
                    j = vocab.get(" ".join(w for _, w in words[i : i + n]))
                    if j is not None and j in contribution:
                        places[j].append([p for p, _ in words[i : i + n]])
        for j, occurrences in places.items():
            value = contribution[j] / len(occurrences)
            for covered in occurrences:
                for p in covered:
                    totals[p] += value / len(covered)
    out = []
    for m, total in zip(pieces, totals, strict=True):
        inner = EDGE.match(m.group(0))
        a, b = (m.start() + inner.start(1), m.start() + inner.end(1)) if inner and inner.group(1) else m.span()
        start, end = norm.span(a, b)
        out.append(Token(description[start:end], start, end, float(total)))
    return out
