"""Batch scoring on Spark (local mode) gives the local engine's rows and scores."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from models import store
from models.settings import Settings
from tests import tiny
from training import batch


def _unavailable() -> str | None:
    if shutil.which("java") is None:
        return "no Java runtime (Debian's openjdk-17-jre-headless); .ci/run installs it"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed"
    return None


@pytest.fixture(scope="module")
def spark_ready() -> None:
    reason = _unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the Spark test cannot run on CI: {reason}")
        pytest.skip(reason)


@pytest.mark.slow
def test_spark_scores_equal_the_local_engine(spark_ready: None, tiny_model: Path, tmp_path: Path) -> None:
    from training import spark

    texts = [*tiny.frames()["test"]["text"].tolist(), "", "X" * 2001, 'COTTON, T-SHIRTS "BASIC" 100 PCS']
    source = pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "description": texts})
    source.to_csv(tmp_path / "in.csv", index=False)
    local, rejected = batch.score(store.load(tiny_model), batch.read(tmp_path / "in.csv"))
    settings = Settings(model_uri=str(tiny_model), database_url=f"sqlite:///{tmp_path / 'x.db'}")
    rows = spark.score(tmp_path / "in.csv", tmp_path / "out", str(tiny_model), settings, "local[2]")
    remote = spark.read_output(tmp_path / "out")
    assert rows == len(source) == len(remote) and list(remote.columns) == list(local.columns)
    local, remote = local.set_index("id").sort_index(), remote.set_index("id").sort_index()
    assert list(local.index) == list(remote.index)
    assert (local["score"].fillna(-1) == remote["score"].fillna(-1)).all()
    assert (local["flagged"].astype("boolean").fillna(False) == remote["flagged"].astype("boolean").fillna(False)).all()
    for column in ("category", "provision", "error"):
        assert local[column].fillna("").tolist() == remote[column].fillna("").tolist(), column
    assert len(rejected) == 2 and remote["error"].notna().sum() == 2
    assert local["flagged"].astype("boolean").fillna(False).any(), "the sample includes flagged rows"
