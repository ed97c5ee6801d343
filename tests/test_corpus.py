from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dualscreen.cli import app
from models.controllist import ControlList
from models.lexicon import CATEGORIES
from models.lexicon import load as load_lexicon
from models.normalise import normalise
from training import corpus


@pytest.fixture(scope="module")
def built(data_dir: Path) -> Iterator[dict[str, pd.DataFrame]]:
    frames, _ = corpus.build(data_dir, seed=13)
    yield frames


@pytest.fixture(scope="module")
def everything(built: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([f.assign(split=s) for s, f in built.items()], ignore_index=True)


def test_corpus_has_the_schema(built: dict[str, pd.DataFrame]) -> None:
    for frame in built.values():
        assert list(frame.columns) == list(corpus.COLUMNS)
        assert set(frame["label"].unique()) <= {0, 1}


def test_corpus_is_large_enough(everything: pd.DataFrame) -> None:
    assert len(everything) >= 30_000


def test_corpus_every_category_in_every_split(built: dict[str, pd.DataFrame]) -> None:
    for split, frame in built.items():
        assert set(frame["category"]) == set(CATEGORIES), split


def test_corpus_no_group_in_two_splits(everything: pd.DataFrame) -> None:
    splits_per_group = everything.groupby("group")["split"].nunique()
    assert splits_per_group.max() == 1


def test_corpus_split_sizes_are_near_80_10_10(built: dict[str, pd.DataFrame]) -> None:
    total = sum(len(f) for f in built.values())
    assert 0.72 <= len(built["train"]) / total <= 0.88
    for split in ("validation", "test"):
        assert 0.06 <= len(built[split]) / total <= 0.16


def test_corpus_every_positive_provision_exists(everything: pd.DataFrame, controls: ControlList) -> None:
    positives = everything[everything["label"] == 1]
    cited = positives[positives["provision"] != ""]
    assert set(cited["provision"]) <= set(controls.provisions)
    # Only goods Annex I does not cover go without a provision: HS chapter 93 arms and CWC Schedule 1 agents.
    uncited = positives[positives["provision"] == ""]
    assert set(uncited["category"]) <= {"military", "chemical"}
    assert (uncited["category"] == "chemical").sum() <= 40 * 3 * corpus.ROWS_PER_SUBSTANCE


def test_corpus_negatives_cite_nothing(everything: pd.DataFrame) -> None:
    negatives = everything[everything["label"] == 0]
    assert (negatives["provision"] == "").all()
    assert (negatives["category"] == "none").all()


def test_corpus_is_deduplicated_on_normalised_text(everything: pd.DataFrame) -> None:
    keys = everything["text"].map(lambda t: normalise(t).text)
    assert keys.duplicated().sum() == 0


def test_corpus_has_hard_negatives_for_every_family(
    everything: pd.DataFrame, data_dir: Path, controls: ControlList
) -> None:
    sources = set(everything["source"])
    for family in load_lexicon(data_dir, controls):
        assert family.family in sources
        assert f"twin:{family.family}" in sources, family.family


def test_corpus_is_deterministic_for_a_seed(data_dir: Path, built: dict[str, pd.DataFrame]) -> None:
    again, _ = corpus.build(data_dir, seed=13)
    assert corpus.digest(again) == corpus.digest(built)


def test_corpus_changes_with_the_seed(data_dir: Path, built: dict[str, pd.DataFrame]) -> None:
    other, _ = corpus.build(data_dir, seed=14)
    assert corpus.digest(other) != corpus.digest(built)


def test_corpus_never_reads_the_evaluation_set(everything: pd.DataFrame, data_dir: Path) -> None:
    dev = pd.read_csv(data_dir / "eval" / "dev_eval.csv")
    keys = set(everything["text"].map(lambda t: normalise(t).text))
    leaked = [d for d in dev["description"] if normalise(d).text in keys]
    assert leaked == []


def test_corpus_command_end_to_end(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["corpus", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for split in corpus.SPLITS:
        assert (tmp_path / "out" / f"{split}.parquet").is_file()
    assert "totals" in result.output
    assert "rows left out, by reason" in result.output
    frames = corpus.load(tmp_path / "out")
    assert sum(len(f) for f in frames.values()) >= 30_000


def test_corpus_load_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dualscreen corpus"):
        corpus.load(tmp_path)
