"""The `dualscreen` command: one Typer app for the whole lifecycle."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from models.settings import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()


@app.callback()
def _root() -> None:
    """dualscreen: flag goods descriptions that may be CBRN-related or dual-use."""


@app.command()
def corpus(
    out: Annotated[Path | None, typer.Option(help="output directory (default: DUALSCREEN_CORPUS_DIR)")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed (default: DUALSCREEN_SEED)")] = None,
) -> None:
    """Build the labelled corpus: train, validation and test Parquet files."""
    from training import corpus as corpus_module

    settings = get_settings()
    out = out or settings.corpus
    started = time.perf_counter()
    with console.status("building the corpus"):
        frames, rejected = corpus_module.build(settings.data_dir, seed=settings.seed if seed is None else seed)
        paths = corpus_module.write(frames, out)
    table = Table(title=f"corpus in {out}")
    for col in ("split", "label", "category", "source", "rows"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for row in corpus_module.summary(frames).itertuples(index=False):
        table.add_row(str(row.split), str(row.label), str(row.category), str(row.source), str(row.rows))
    console.print(table)
    totals = Table(title="totals")
    for col in ("split", "rows", "positives", "negatives", "groups"):
        totals.add_column(col)
    for split, frame in frames.items():
        pos = int(frame["label"].sum())
        totals.add_row(split, str(len(frame)), str(pos), str(len(frame) - pos), str(frame["group"].nunique()))
    console.print(totals)
    if rejected:
        kept_out = Table(title="rows left out, by reason")
        kept_out.add_column("reason")
        kept_out.add_column("rows", justify="right")
        for reason, n in sorted(rejected.items()):
            kept_out.add_row(reason, str(n))
        console.print(kept_out)
    console.print(
        f"wrote {', '.join(p.name for p in paths)} in {time.perf_counter() - started:.1f} s; "
        f"digest {corpus_module.digest(frames)[:16]}"
    )


@app.command()
def up() -> None:
    """The main job: build the corpus on first run, then train and serve as far as they exist."""
    settings = get_settings()
    if not (settings.corpus / "train.parquet").is_file():
        corpus(out=None, seed=None)
    else:
        console.print(f"corpus found in {settings.corpus}; `dualscreen corpus` rebuilds it")


def main() -> None:
    """Entry point for `python -m dualscreen`."""
    app()
