"""Batch scoring throughput: the local engine against Spark local mode, on the same rows.

Run from the project root after `dualscreen corpus` and a training run:

    .venv/bin/python bench/batch.py                     # 10k and 100k rows (long: the 100k runs take minutes)
    .venv/bin/python bench/batch.py --rows 10000 --master 'local[2]'

Rows are drawn, with a fixed seed and 5 % controlled descriptions, from the corpus test split
(repeated with a line number when more rows are asked for than it has, so every row is distinct).
Each engine is timed end to end from the input file to the written output, model loading included.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def rows(n: int, seed: int = 7) -> pd.DataFrame:
    """``n`` distinct descriptions with ids, 5 % of them controlled."""
    test = pd.read_parquet(ROOT / "data" / "corpus" / "test.parquet")
    positives = test[test["label"] == 1].sample(n=max(1, n // 20), replace=True, random_state=seed)
    negatives = test[test["label"] == 0].sample(n=n - len(positives), replace=True, random_state=seed)
    pool = pd.concat([positives, negatives]).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    text = pool["text"] + pd.Series([f" LINE {i}" for i in range(n)])
    return pd.DataFrame({"id": [f"b{i}" for i in range(n)], "description": text})


def timed(command: list[str]) -> float:
    """Seconds a command takes; its failure stops the benchmark with its output."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> int:
    """Run both engines at each size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="10000,100000", help="comma-separated row counts")
    parser.add_argument("--master", default="local[2]", help="Spark master URL")
    parser.add_argument("--model", default=None, help="model URI or directory (default: the champion)")
    args = parser.parse_args()
    if not (ROOT / "data" / "corpus" / "test.parquet").is_file():
        sys.exit("no corpus: run `.venv/bin/dualscreen corpus` first")
    model = ["--model", args.model] if args.model else []
    table = Table(title=f"batch scoring, 5 % controlled, Spark master {args.master}")
    for column in ("rows", "engine", "seconds", "descriptions/s"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="dualscreen-batch-") as scratch:
        for n in (int(x) for x in args.rows.split(",")):
            source = Path(scratch) / f"in-{n}.csv"
            rows(n).to_csv(source, index=False)
            for engine in ("local", "spark"):
                out = Path(scratch) / f"out-{n}-{engine}{'.csv' if engine == 'local' else ''}"
                extra = ["--master", args.master] if engine == "spark" else []
                seconds = timed(
                    [str(BIN / "dualscreen"), "score", str(source), "-o", str(out), "--engine", engine, *model, *extra]
                )
                table.add_row(f"{n:,}", engine, f"{seconds:.1f}", f"{n / seconds:,.0f}")
                Console().print(f"{engine} {n:,} rows: {seconds:.1f} s")
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
