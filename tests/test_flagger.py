from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import store
from models.controllist import ANNEX_FILE, ControlList
from models.flagger import PARTS, Flagger
from models.settings import PROJECT_DIR, get_settings
from tests import tiny
from training.embeddings import EmbeddingCache
from training.train import fit_candidate

CONTROLLED = "HASTELLOY C-276 REACTOR 2000 L, 2 PCS"
TWIN = "SS316L MIXING TANK 2000 L, 2 PCS"


Encoder = Callable[[Sequence[str]], np.ndarray]


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return EmbeddingCache(PROJECT_DIR / "var" / "cache")


@pytest.fixture(scope="session")
def splits() -> dict[str, pd.DataFrame]:
    return tiny.frames()


def _fit(parts: tuple[str, ...], splits: dict[str, pd.DataFrame], encoder: Encoder) -> Flagger:
    return fit_candidate(parts, {"folds": 2}, splits, {}, encoder, get_settings())


@pytest.fixture(scope="session")
def fitted(splits: dict[str, pd.DataFrame], encoder: Encoder) -> Flagger:
    return _fit(PARTS, splits, encoder)


@pytest.mark.parametrize("parts", [("tfidf",), ("embedding",), ("watchlist",), ("retrieval",), PARTS])
def test_flagger_each_candidate_fits_and_scores_in_unit_interval(
    parts: tuple[str, ...], splits: dict[str, pd.DataFrame], encoder: Encoder
) -> None:
    flagger = _fit(parts, splits, encoder)
    scores = flagger.predict_proba(splits["test"]["text"].tolist())[:, 1]
    assert np.all((scores >= 0) & (scores <= 1))
    assert 0 <= flagger.threshold_ <= 1


def test_flagger_controlled_outscores_its_ordinary_twin(fitted: Flagger) -> None:
    controlled, twin = fitted.score([CONTROLLED, TWIN])
    assert controlled.score > twin.score


def test_flagger_unseen_item_outscores_ordinary_goods(fitted: Flagger, splits: dict[str, pd.DataFrame]) -> None:
    test = splits["test"]
    scores = fitted.predict_proba(test["text"].tolist())[:, 1]
    positives = scores[test["label"].to_numpy() == 1]
    ordinary = scores[test["group"].str.startswith("hs:").to_numpy()]
    assert positives.mean() > ordinary.mean()


def test_flagger_explanation_cites_real_provisions_verbatim(fitted: Flagger, controls: ControlList) -> None:
    (result,) = fitted.score(["THIODIGLYCOL 99% 200 KG DRUMS"], explain=True)
    assert result.provisions
    for match in result.provisions:
        assert match.code in controls
    assert result.hits and result.hits[0].provision == "1C350.1"


def test_flagger_token_spans_lie_inside_the_input(fitted: Flagger) -> None:
    text = "  \u0422\u041dIODIGLYCOL\u200b 99%,  200KGS DRUMS"
    (result,) = fitted.score([text], explain=True)
    assert result.tokens
    for token in result.tokens:
        assert 0 <= token.start < token.end <= len(text)
        assert text[token.start : token.end] == token.text


def test_flagger_removing_top_tokens_lowers_the_score(splits: dict[str, pd.DataFrame], encoder: Encoder) -> None:
    flagger = _fit(("tfidf",), splits, encoder)
    text = "HASTELLOY C-276 REACTOR 2000 L, 2 PCS"
    (result,) = flagger.score([text], explain=True)
    top = sorted(result.tokens, key=lambda t: -t.weight)[:2]
    reduced = text
    for token in sorted(top, key=lambda t: -t.start):
        reduced = reduced[: token.start] + reduced[token.end :]
    # Compare margins: on a tiny, separable corpus the calibrated score saturates at 1.0.
    before, after = flagger.decision_function([text, reduced])
    assert after < before


def test_flagger_token_weights_add_up_to_the_tfidf_share_of_the_margin(fitted: Flagger) -> None:
    text = "THIODIGLYCOL 99%, 200 KG DRUMS"
    (result,) = fitted.score([text], explain=True)
    tfidf_logit = fitted.tfidf_.decision_function([text])[0] - fitted.tfidf_.named_steps["clf"].intercept_[0]
    share = tfidf_logit * fitted.stacker_.coef_[0][0] / fitted.scale_[0] * fitted.platt_[0]
    assert sum(t.weight for t in result.tokens) == pytest.approx(share, rel=1e-6)


def test_store_save_load_gives_identical_scores(fitted: Flagger, tmp_path: Path, data_dir: Path) -> None:
    store.save(fitted, tmp_path / "model", annex=data_dir / ANNEX_FILE)
    loaded = store.load(tmp_path / "model")
    texts = [CONTROLLED, TWIN, "COTTON SOCKS"]
    assert np.allclose(fitted.predict_proba(texts)[:, 1], loaded.predict_proba(texts)[:, 1], rtol=0, atol=1e-9)
    assert [r.category for r in fitted.score(texts)] == [r.category for r in loaded.score(texts)]


def test_store_refuses_a_tampered_file(fitted: Flagger, tmp_path: Path, data_dir: Path) -> None:
    model = store.save(fitted, tmp_path / "model", annex=data_dir / ANNEX_FILE)
    config = model / "flagger.json"
    config.write_text(config.read_text().replace('"threshold": ', '"threshold": 0.0001 + '), encoding="utf-8")
    with pytest.raises(store.IntegrityError, match="does not match the manifest"):
        store.load(model)


def test_store_refuses_an_unlisted_file(fitted: Flagger, tmp_path: Path, data_dir: Path) -> None:
    model = store.save(fitted, tmp_path / "model", annex=data_dir / ANNEX_FILE)
    (model / "extra.pkl").write_bytes(b"not a model")
    with pytest.raises(store.IntegrityError, match="extra"):
        store.load(model)


def test_store_refuses_a_model_without_manifest(fitted: Flagger, tmp_path: Path, data_dir: Path) -> None:
    model = store.save(fitted, tmp_path / "model", annex=data_dir / ANNEX_FILE)
    (model / "MANIFEST.json").unlink()
    with pytest.raises(store.IntegrityError, match=r"no MANIFEST\.json"):
        store.load(model)


def test_flagger_explanation_checks_each_cited_provision(fitted: Flagger) -> None:
    (result,) = fitted.score(["GLASS LINED REACTOR 20 L, JACKETED"], explain=True)
    assert [c.code for c in result.checks] == [m.code for m in result.provisions]
    assert {c.status for c in result.checks} <= {"met", "failed", "unknown"}
    (plain,) = fitted.score(["GLASS LINED REACTOR 20 L, JACKETED"])
    assert plain.checks == []


def test_store_round_trips_a_linear_head_without_threshold_check(
    splits: dict[str, pd.DataFrame], encoder: Encoder, tmp_path: Path, data_dir: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    params = {"folds": 2, "thresholds": False, "embedding_head": LogisticRegression(max_iter=1000)}
    flagger = fit_candidate(PARTS, params, splits, {}, encoder, get_settings())
    loaded = store.load(store.save(flagger, tmp_path / "model", annex=data_dir / ANNEX_FILE))
    texts = [CONTROLLED, TWIN]
    assert not loaded.thresholds
    assert np.allclose(flagger.predict_proba(texts)[:, 1], loaded.predict_proba(texts)[:, 1], rtol=0, atol=1e-9)


def test_flagger_weighs_the_threshold_check_with_the_signs_it_asks(
    splits: dict[str, pd.DataFrame], encoder: Encoder, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tiny corpus is below the size at which the check enters the stacker; lower that size.
    monkeypatch.setattr("models.flagger.SMALL", 10)
    flagger = _fit(PARTS, splits, encoder)
    assert flagger.checks_quantities
    failed, met = flagger.stacker_.coef_[0][-2:]
    assert failed <= 0 <= met
    loaded = store.load(store.save(flagger, tmp_path / "model", annex=data_dir / ANNEX_FILE))
    texts = ["GLASS LINED REACTOR 20 L", "GLASS LINED REACTOR 2000 L", "COTTON SOCKS"]
    assert loaded.checks_quantities
    assert np.allclose(flagger.predict_proba(texts)[:, 1], loaded.predict_proba(texts)[:, 1], rtol=0, atol=1e-9)


def test_flagger_small_training_set_gets_a_linear_head_no_check_and_equal_weights(fitted: Flagger) -> None:
    assert not fitted.checks_quantities
    assert hasattr(fitted.embedding_head_, "coef_")
    # Each part's standardised evidence counts once; the free column (second-best provision) not at all.
    assert fitted.stacker_.coef_[0].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
