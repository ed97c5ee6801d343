"""Text preparation shared by every model: the normalised form of each description."""

from __future__ import annotations

from collections.abc import Iterable

from sklearn.base import BaseEstimator, TransformerMixin

from models.normalise import normalise


def prepare(descriptions: Iterable[str]) -> list[str]:
    """The normalised text of each description."""
    return [normalise(d).text for d in descriptions]


class Normalise(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Pipeline step: raw descriptions to normalised text."""

    def fit(self, X: Iterable[str], y: object = None) -> Normalise:
        return self

    def transform(self, X: Iterable[str]) -> list[str]:
        return prepare(X)
