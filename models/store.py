"""Save and load a flagger as a directory of safe formats, with a manifest of sha256 hashes.

Nothing is pickled. Linear heads and IDF weights are NumPy arrays (loaded with
``allow_pickle=False``), vocabularies, configuration and indexes are JSON, and the Annex I text
and watch list the model cites travel with it. The estimators are rebuilt from those parts by
this module's own code, so a model file can carry numbers and strings but never code. ``load``
refuses a directory whose files do not match its manifest.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import FeatureUnion, Pipeline

from models.controllist import parse as parse_annex
from models.encoder import ENCODER_ID, sha256_of
from models.flagger import Flagger
from models.retrieval import ProvisionIndex
from models.text import Normalise
from models.watchlist import Substance, Watchlist

FORMAT = 3
# Format 2 (a linear embedding head, no threshold check) still loads and scores as it did.
READABLE = (2, 3)
MANIFEST = "MANIFEST.json"
CONFIG = "flagger.json"


class IntegrityError(RuntimeError):
    """A model directory whose files do not match its manifest, or that asks to run untrusted code."""


def _save_linear(path: Path, model: LogisticRegression, dtype: type = np.float64) -> None:
    np.savez(
        path,
        coef=model.coef_.astype(dtype),
        intercept=model.intercept_,
        classes=np.asarray(model.classes_).astype(str),
    )


def _save_mlp(path: Path, model: MLPClassifier) -> None:
    if model.activation != "relu" or model.out_activation_ != "logistic":
        raise ValueError("only relu hidden layers with a logistic output are saved; others would score differently")
    layers = {f"coef_{i}": w for i, w in enumerate(model.coefs_)}
    layers |= {f"intercept_{i}": b for i, b in enumerate(model.intercepts_)}
    np.savez(path, layers=np.array(len(model.coefs_)), classes=np.asarray(model.classes_).astype(str), **layers)


def _load_head(path: Path) -> LogisticRegression | MLPClassifier:
    """An embedding head: linear (format 2) or a relu MLP, rebuilt from its arrays."""
    with np.load(path, allow_pickle=False) as arrays:
        if "layers" not in arrays:
            return _load_linear(path)
        n = int(arrays["layers"])
        coefs = [arrays[f"coef_{i}"].astype(np.float64) for i in range(n)]
        intercepts = [arrays[f"intercept_{i}"].astype(np.float64) for i in range(n)]
        model = MLPClassifier(hidden_layer_sizes=tuple(w.shape[1] for w in coefs[:-1]))
        model.coefs_, model.intercepts_ = coefs, intercepts
        model.n_layers_, model.n_outputs_, model.out_activation_ = n + 1, 1, "logistic"
        model.classes_ = arrays["classes"].astype(int)
        model.n_features_in_ = coefs[0].shape[0]
    return model


def _load_linear(path: Path) -> LogisticRegression:
    with np.load(path, allow_pickle=False) as arrays:
        model = LogisticRegression()
        model.coef_ = arrays["coef"].astype(np.float64)
        model.intercept_ = arrays["intercept"]
        classes = arrays["classes"]
        model.classes_ = classes.astype(int) if all(c.lstrip("-").isdigit() for c in classes) else classes
        model.n_features_in_ = model.coef_.shape[1]
    return model


VECTORIZER_PARAMS = (
    "analyzer", "ngram_range", "lowercase", "token_pattern", "norm", "use_idf", "smooth_idf", "sublinear_tf",
)  # fmt: skip


def _save_tfidf(directory: Path, pipeline: Pipeline) -> None:
    union: FeatureUnion = pipeline.named_steps["features"]
    parts = []
    for name, vectorizer in union.transformer_list:
        vocabulary = {k: int(v) for k, v in vectorizer.vocabulary_.items()}
        (directory / f"tfidf_{name}_vocabulary.json").write_text(json.dumps(vocabulary), encoding="utf-8")
        np.save(directory / f"tfidf_{name}_idf.npy", vectorizer.idf_)
        params = {k: vectorizer.get_params()[k] for k in VECTORIZER_PARAMS}
        parts.append({"name": name, "params": params})
    (directory / "tfidf.json").write_text(json.dumps({"parts": parts}), encoding="utf-8")
    _save_linear(directory / "tfidf_clf.npz", pipeline.named_steps["clf"])


def _load_tfidf(directory: Path) -> Pipeline:
    spec = json.loads((directory / "tfidf.json").read_text(encoding="utf-8"))
    transformers = []
    for part in spec["parts"]:
        name, params = part["name"], part["params"]
        if params["analyzer"] not in ("char_wb", "char", "word"):
            raise IntegrityError(f"{directory}: unknown analyzer {params['analyzer']!r}")
        vectorizer = TfidfVectorizer(**{**params, "ngram_range": tuple(params["ngram_range"])})
        vocabulary = json.loads((directory / f"tfidf_{name}_vocabulary.json").read_text(encoding="utf-8"))
        vectorizer.vocabulary_ = {str(k): int(v) for k, v in vocabulary.items()}
        vectorizer.idf_ = np.load(directory / f"tfidf_{name}_idf.npy", allow_pickle=False)
        transformers.append((name, vectorizer))
    clf = _load_linear(directory / "tfidf_clf.npz")
    return Pipeline([("normalise", Normalise()), ("features", FeatureUnion(transformers)), ("clf", clf)])


def save(flagger: Flagger, directory: Path, annex: Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``flagger``, the Annex I file it cites (``annex``) and a manifest to ``directory`` (new or empty)."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty; save a model into a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    parts = tuple(flagger.parts)
    config: dict[str, Any] = {
        "format": FORMAT,
        "parts": list(parts),
        "threshold": flagger.threshold_,
        "target_recall": flagger.target_recall,
        "platt": list(flagger.platt_),
        "scale": flagger.scale_.tolist(),
        "gate": None if not np.isfinite(getattr(flagger, "gate_", -np.inf)) else float(flagger.gate_),
        "thresholds": flagger.checks_quantities,
        "params": {k: repr(v) for k, v in flagger.get_params(deep=False).items() if k not in ("controls", "watchlist")},
        "encoder": ENCODER_ID if flagger.uses_embeddings else None,
        "metadata": metadata or {},
    }
    _save_linear(directory / "stacker.npz", flagger.stacker_)
    # The category head is the largest part (a weight per category and feature); float32 halves it.
    _save_linear(directory / "category_head.npz", flagger.category_head_, dtype=np.float32)
    if "tfidf" in parts:
        _save_tfidf(directory, flagger.tfidf_)
    if "embedding" in parts:
        if isinstance(flagger.embedding_head_, MLPClassifier):
            _save_mlp(directory / "embedding_head.npz", flagger.embedding_head_)
        else:
            _save_linear(directory / "embedding_head.npz", flagger.embedding_head_)
    if getattr(flagger, "default_embedding_", None) is not None:
        np.save(directory / "default_embedding.npy", flagger.default_embedding_)
    if getattr(flagger, "reference_", None) is not None:
        np.save(directory / "reference.npy", flagger.reference_)
    if "retrieval" in parts:
        index: ProvisionIndex = flagger.retrieval_
        np.savez(
            directory / "retrieval.npz",
            vectors=index.vectors_,
            is_annex=index.is_annex_,
            head_coef=index.head_.coef_,
            head_intercept=index.head_.intercept_,
        )
        (directory / "retrieval.json").write_text(
            json.dumps(
                {
                    "codes": index.codes_,
                    "texts": index.texts_,
                    "params": {k: v for k, v in index.get_params().items() if k != "controls"},
                }
            ),
            encoding="utf-8",
        )
    shutil.copyfile(annex, directory / "annex.json")
    if flagger.watchlist is not None:
        substances = [asdict(s) for s in flagger.watchlist.substances]
        (directory / "watchlist.json").write_text(json.dumps(substances, ensure_ascii=False), encoding="utf-8")
    (directory / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    files = sorted(p.name for p in directory.iterdir() if p.is_file() and p.name != MANIFEST)
    manifest = {"format": FORMAT, "files": {name: sha256_of(directory / name) for name in files}}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return directory


def verify(directory: Path) -> dict[str, str]:
    """Check every file against the manifest; return the manifest's hashes."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise IntegrityError(f"{directory}: no {MANIFEST}; refusing to load a model without hashes")
    files: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))["files"]
    present = {p.name for p in directory.iterdir() if p.is_file() and p.name != MANIFEST}
    if present != set(files):
        raise IntegrityError(
            f"{directory}: files differ from the manifest (extra {sorted(present - set(files))}, "
            f"missing {sorted(set(files) - present)})"
        )
    for name, expected in files.items():
        actual = sha256_of(directory / name)
        if actual != expected:
            raise IntegrityError(f"{directory / name}: sha256 {actual} does not match the manifest ({expected})")
    return files


def digest(directory: Path) -> str:
    """One sha256 naming the model: the hash of its manifest."""
    return sha256_of(Path(directory) / MANIFEST)


def load(directory: Path) -> Flagger:
    """Load a flagger after verifying every file's hash against the manifest."""
    directory = Path(directory)
    verify(directory)
    config = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
    if config.get("format") not in READABLE:
        raise IntegrityError(f"{directory}: model format {config.get('format')} is not one of {READABLE}; retrain")
    if config.get("encoder") not in (None, ENCODER_ID):
        raise IntegrityError(f"{directory}: trained with encoder {config['encoder']}, this install has {ENCODER_ID}")
    parts = tuple(config["parts"])
    controls = parse_annex(json.loads((directory / "annex.json").read_text(encoding="utf-8")))
    watchlist = None
    if (directory / "watchlist.json").is_file():
        rows = json.loads((directory / "watchlist.json").read_text(encoding="utf-8"))
        watchlist = Watchlist(
            [
                Substance(**{**r, "synonyms": tuple(r["synonyms"]), "abbreviations": tuple(r["abbreviations"])})
                for r in rows
            ]
        )
    flagger = Flagger(
        parts=parts,
        controls=controls,
        watchlist=watchlist,
        target_recall=config["target_recall"],
        thresholds=bool(config.get("thresholds", False)),
    )
    flagger.thresholds_ = flagger.thresholds
    flagger.gate_ = -np.inf if config["gate"] is None else float(config["gate"])
    if (directory / "default_embedding.npy").is_file():
        flagger.default_embedding_ = np.load(directory / "default_embedding.npy", allow_pickle=False)
    if (directory / "reference.npy").is_file():
        flagger.reference_ = np.load(directory / "reference.npy", allow_pickle=False)
    flagger.stacker_ = _load_linear(directory / "stacker.npz")
    flagger.category_head_ = _load_linear(directory / "category_head.npz")
    flagger.scale_ = np.asarray(config["scale"])
    flagger.platt_ = tuple(config["platt"])
    flagger.threshold_ = float(config["threshold"])
    flagger.classes_ = np.array([0, 1])
    if "tfidf" in parts:
        flagger.tfidf_ = _load_tfidf(directory)
    if "embedding" in parts:
        flagger.embedding_head_ = _load_head(directory / "embedding_head.npz")
    if "retrieval" in parts:
        meta = json.loads((directory / "retrieval.json").read_text(encoding="utf-8"))
        # Models saved before exemplars were discounted cite as they did.
        index = ProvisionIndex(controls=controls, **{"exemplar_margin": 0.0, **meta["params"]})
        with np.load(directory / "retrieval.npz", allow_pickle=False) as arrays:
            index.vectors_ = arrays["vectors"]
            index.is_annex_ = arrays["is_annex"]
            head = LogisticRegression()
            head.coef_, head.intercept_, head.classes_ = arrays["head_coef"], arrays["head_intercept"], np.array([0, 1])
        index.head_ = head
        index.classes_ = head.classes_
        index.codes_ = meta["codes"]
        index.texts_ = meta["texts"]
        index._index_lexical()
        flagger.retrieval_ = index
    return flagger
