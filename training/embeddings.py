"""A disk cache of sentence embeddings keyed by text, so each text is encoded once across runs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.encoder import DIMENSIONS, ENCODER_ID, compute


class EmbeddingCache:
    """Embeddings of normalised texts, stored as NumPy arrays under ``directory``."""

    def __init__(self, directory: Path, batch_size: int = 64) -> None:
        self.path = Path(directory) / f"embeddings-{ENCODER_ID}.npz"
        self.batch_size = batch_size
        self._index: dict[str, int] = {}
        self._vectors = np.zeros((0, DIMENSIONS), dtype=np.float32)
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as arrays:
                self._vectors = arrays["vectors"]
                self._index = {str(k): i for i, k in enumerate(arrays["keys"])}

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()

    def __call__(self, texts: Sequence[str], save: bool = True) -> np.ndarray:
        """Embeddings of ``texts`` (already normalised), encoding only those not seen before.

        ``save=False`` keeps new ones in memory only (texts that will not come back, such as the
        perturbed copies of robustness checks).
        """
        keys = [self._key(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._index}.items())
        if missing:
            fresh = compute([t for _, t in missing], batch_size=self.batch_size, progress=len(missing) > 2000)
            start = len(self._vectors)
            self._vectors = np.vstack([self._vectors, fresh]) if len(self._vectors) else fresh
            for offset, (k, _) in enumerate(missing):
                self._index[k] = start + offset
            if save:
                self.save()
        return self._vectors[[self._index[k] for k in keys]]

    def lookup(self, texts: Sequence[str]) -> np.ndarray:
        """A memo for ``models.encoder.memo``: known texts from the cache, new ones computed, not written."""
        return self(texts, save=False)

    def save(self) -> None:
        """Write the cache (atomically)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(sorted(self._index, key=self._index.__getitem__))
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=self._vectors)
        tmp.replace(self.path)
