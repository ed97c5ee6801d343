"""Batch scoring on Apache Spark: the same rows, the same scores, as the local engine.

The driver resolves the model (a registry URI or a directory) to a verified directory and ships it
with ``SparkContext.addFile``; each executor's Python worker loads it once (hashes checked again)
and scores its partitions through ``mapInPandas`` with ``training.batch.score_rows``, the very
function the local engine uses. The output is Parquet with the local engine's columns.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from models import registry, store
from models.flagger import Flagger
from models.settings import Settings
from training.batch import COLUMNS, BatchInputError, score_rows

_loaded: dict[str, Flagger] = {}  # per executor process: model directory -> flagger


def _schema(explain: bool) -> str:
    extra = ", explanation string" if explain else ""
    return f"id string, score double, flagged boolean, category string, provision string, error string{extra}"


def _model_dir(uri: str, settings: Settings, scratch: Path) -> Path:
    path = Path(uri)
    if path.is_dir():
        store.verify(path)
        return path
    registry.configure(settings.tracking)
    directory, _ = registry.download(uri, scratch)
    store.verify(directory)
    return directory


def score(
    input_path: Path,
    output_path: Path,
    uri: str,
    settings: Settings,
    master: str = "local[2]",
    explain: bool = False,
) -> int:
    """Score ``input_path`` (CSV or Parquet) into ``output_path`` (Parquet) on Spark; returns the row count."""
    from pyspark import SparkFiles
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F

    # Executors run this interpreter (the project's environment) unless the cluster says otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(master)
        .appName("dualscreen-score")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    try:
        suffix = input_path.suffix.lower()
        if suffix == ".csv":
            frame: Any = spark.read.csv(str(input_path), header=True, inferSchema=False, multiLine=True, escape='"')
        elif suffix == ".parquet" or input_path.is_dir():
            frame = spark.read.parquet(str(input_path))
        else:
            raise BatchInputError(f"{input_path.name}: send CSV or Parquet to the Spark engine")
        if "description" not in frame.columns:
            raise BatchInputError(f"{input_path}: no 'description' column; the file needs description[,id,hs_code]")
        if "id" not in frame.columns:  # as the local engine: 1, 2, 3... in file order
            order = Window.orderBy(F.monotonically_increasing_id())
            frame = frame.withColumn("id", F.row_number().over(order).cast("string"))
        frame = frame.select(
            F.col("id").cast("string"), F.coalesce(F.col("description"), F.lit("")).alias("description")
        )
        with tempfile.TemporaryDirectory(prefix="dualscreen-spark-") as scratch:
            directory = _model_dir(uri, settings, Path(scratch))
            spark.sparkContext.addFile(str(directory), recursive=True)
            name = directory.name

            def batches(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
                local = SparkFiles.get(name)
                if local not in _loaded:
                    _loaded[local] = store.load(Path(local))
                for part in parts:
                    yield score_rows(_loaded[local], part, explain)

            scored = frame.mapInPandas(batches, schema=_schema(explain))
            scored.write.mode("overwrite").parquet(str(output_path))
        rows: int = spark.read.parquet(str(output_path)).count()
        return rows
    finally:
        spark.stop()


def read_output(path: Path) -> pd.DataFrame:
    """The Spark engine's Parquet output as one frame, in the local engine's column order."""
    frame = pd.read_parquet(path)
    columns = [c for c in (*COLUMNS, "explanation") if c in frame.columns]
    return frame[columns]
