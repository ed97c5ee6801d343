"""Corpus, training, evaluation, reports, batch scoring and promotion."""
