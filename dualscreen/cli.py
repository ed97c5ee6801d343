"""The `dualscreen` command: one Typer app for the whole lifecycle."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from models.settings import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
# Tables stay readable when the output is a file or a CI log (rich assumes 80 columns there).
console = Console() if sys.stdout.isatty() else Console(width=160)


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


def _fail(err: Exception) -> NoReturn:
    """Report a user error (it names the field and the fix) and exit with status 2."""
    console.print(f"[red]error:[/red] {err}")
    raise typer.Exit(2) from None


def _print_frame(frame: Any, title: str) -> None:
    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col), justify="left" if frame[col].dtype == object else "right")
    for row in frame.itertuples(index=False):
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)


@app.command()
def train(
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="estimator parameter KEY=VALUE")] = None,
    candidate: Annotated[list[str] | None, typer.Option("--candidate", "-c", help="train only these")] = None,
    register: Annotated[bool, typer.Option(help="register the best candidate")] = True,
) -> None:
    """Train every candidate, log one MLflow run each, register the best as the challenger."""
    from training import train as train_module

    settings = get_settings()
    try:
        params = train_module.parse_params(param or [])
        outcomes = train_module.run(settings, params, candidate, register=register, console=console)
    except (ValueError, FileNotFoundError) as err:
        _fail(err)
    _print_frame(train_module.comparison(outcomes), "candidates on validation, test and dev-eval (best first)")


@app.command()
def evaluate(
    file: Annotated[Path, typer.Argument(help="labelled CSV: description,label[,id,hs_code,category,provision]")],
    model: Annotated[str | None, typer.Option(help="model URI or directory (default: the champion)")] = None,
    out: Annotated[Path | None, typer.Option(help="write the metrics as JSON here")] = None,
) -> None:
    """Evaluate a model on a labelled CSV and print the metrics."""
    import json

    from models.loader import load_model
    from training import evaluate as evaluate_module

    settings = get_settings()
    try:
        frame = evaluate_module.read_labelled(file)
        flagger, info = load_model(model or settings.model_uri, settings)
    except (evaluate_module.EvaluationInputError, FileNotFoundError) as err:
        _fail(err)
    result = evaluate_module.evaluate(flagger, frame, file.stem, seed=settings.seed)
    metrics = evaluate_module.table([result]).reset_index(names="metric")
    _print_frame(metrics, f"{file.name} with {info.get('uri', model)}")
    if not result.per_category.empty:
        _print_frame(result.per_category, "recall per category")
    target = out or file.with_suffix(".metrics.json")
    target.write_text(json.dumps(evaluate_module.as_json(result), indent=2), encoding="utf-8")
    console.print(f"wrote {target}")


@app.command()
def promote(version: Annotated[str | None, typer.Argument(help="version (default: the challenger)")] = None) -> None:
    """Make a version the champion if it is at least as good on test and dev-eval and flags every canary."""
    from training import catalog

    settings = get_settings()
    try:
        moved, results, message = catalog.promote(settings, version)
    except LookupError as err:
        _fail(err)
    table = Table(title="promotion gates")
    for col in ("gate", "challenger", "champion", "passed"):
        table.add_column(col)
    for g in results:
        table.add_row(g.name, f"{g.challenger:.4f}", f"{g.champion:.4f}", "yes" if g.passed else "[red]no[/red]")
    console.print(table)
    console.print(message)
    if not moved:
        raise typer.Exit(1)


@app.command()
def rollback() -> None:
    """Move the champion back to the version it replaced."""
    from training import catalog

    try:
        console.print(catalog.rollback(get_settings()))
    except LookupError as err:
        _fail(err)


@app.command()
def score(
    input_csv: Annotated[Path, typer.Argument(help="CSV (or Parquet, with --engine spark) with a description column")],
    output: Annotated[Path, typer.Option("-o", "--output", help="scored CSV (local) or Parquet (spark)")],
    model: Annotated[str | None, typer.Option(help="model URI or directory (default: the champion)")] = None,
    explain: Annotated[bool, typer.Option(help="add the explanation as JSON")] = False,
    batch_size: Annotated[int, typer.Option(help="rows per batch")] = 256,
    engine: Annotated[str, typer.Option(help="local, or spark (pyspark and Java 17 needed)")] = "local",
    master: Annotated[str, typer.Option(help="Spark master URL with --engine spark")] = "local[2]",
) -> None:
    """Score descriptions in batches; rows that cannot be scored are reported, never dropped."""
    from training import batch

    settings = get_settings()
    if engine == "spark":
        from training import spark

        try:
            rows = spark.score(input_csv, output, model or settings.model_uri, settings, master, explain)
        except (batch.BatchInputError, FileNotFoundError) as err:
            _fail(err)
        console.print(f"scored {rows} rows on Spark ({master}) -> {output} (Parquet)")
        return
    if engine != "local":
        _fail(ValueError(f"--engine must be local or spark; got {engine!r}"))
    from models.loader import load_model

    try:
        frame = batch.read(input_csv)
        flagger, info = load_model(model or settings.model_uri, settings)
    except (batch.BatchInputError, FileNotFoundError) as err:
        _fail(err)
    scored, rejected = batch.score(flagger, frame, explain=explain, batch_size=batch_size, console=console)
    scored.to_csv(output, index=False)
    console.print(
        f"scored {len(scored)} rows with {info.get('uri')} -> {output}; {int(scored['flagged'].sum())} flagged"
    )
    if rejected:
        console.print(f"[yellow]{len(rejected)} rows not scored[/yellow] (see the 'error' column):")
        for row_id, reason in rejected[:20]:
            console.print(f"  {row_id}: {reason}")


@app.command()
def up() -> None:
    """The main job: build the corpus and train on first run, then serve the API on localhost."""
    from training.catalog import champion_exists

    settings = get_settings()
    if not (settings.corpus / "train.parquet").is_file():
        corpus(out=None, seed=None)
    else:
        console.print(f"corpus found in {settings.corpus}; `dualscreen corpus` rebuilds it")
    if not champion_exists(settings):
        train(param=None, candidate=None, register=True)
    else:
        console.print(f"champion found for {settings.model_name}; `dualscreen train` trains a challenger")
    from serving import demo

    name, password = demo.officer(settings)
    flagged = demo.queue(settings)
    if flagged:
        console.print(f"seeded the review queue with {flagged} flagged sample declarations")
    if password:
        console.print(f"review page: sign in as {name} with the password in {demo.PASSWORD_FILE}")
    console.print("API keys: `dualscreen keys create --role screening --name NAME`")
    serve(host=None, port=None, workers=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on (default: DUALSCREEN_HOST, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: DUALSCREEN_PORT, 8000)")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes behind the one port")] = 1,
) -> None:
    """Serve the scoring API (and the KServe v2 routes) with the champion model."""
    import uvicorn

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    _engine().dispose()  # create or migrate the schema once, before the workers start
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics here; /metrics sums them (the directory starts empty).
        import atexit
        import shutil

        from models.settings import PROJECT_DIR

        metrics_dir = PROJECT_DIR / "var" / f"prometheus-{os.getpid()}"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        atexit.register(shutil.rmtree, metrics_dir, True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    console.print(f"serving {settings.model_uri} on http://{host}:{port} (docs at /docs); Ctrl-C stops")
    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )


ingest_app = typer.Typer(no_args_is_help=True, help="Bring new labelled evidence in, validated and versioned.")
app.add_typer(ingest_app, name="ingest")


@ingest_app.command("seizures")
def ingest_seizures(file: Annotated[Path, typer.Argument(help="seizure records: CSV, XLSX or Parquet")]) -> None:
    """Validate seizure records row by row; store the accepted ones as a new content-hashed version."""
    from models.controllist import load as load_controllist
    from training import seizures

    settings = get_settings()
    try:
        done = seizures.ingest(file, settings.seizures_dir, load_controllist(settings.data_dir))
    except (seizures.SeizureInputError, FileNotFoundError) as err:
        _fail(err)
    console.print(done.message)
    rejected = done.rejected
    held = rejected["reason"] == "already ingested in an earlier version"
    if held.any():
        console.print(
            f"{int(held.sum())} rows were already ingested in an earlier version (listed in the rejects file)"
        )
    if len(rejected[~held]):
        table = Table(title=f"{rejected[~held]['row'].nunique()} rows rejected (also in {done.rejects_file})")
        for col in ("row", "column", "reason"):
            table.add_column(col)
        for r in rejected[~held].itertuples(index=False):
            table.add_row(str(r.row), str(r.column), str(r.reason))
        console.print(table)


@app.command()
def retrain(
    candidate: Annotated[list[str] | None, typer.Option("--candidate", "-c", help="train only these")] = None,
    feedback: Annotated[
        Path | None, typer.Option(help="decisions CSV (default: exported from the review database now)")
    ] = None,
) -> None:
    """Train on corpus, seizures and decisions; promote the challenger only if every gate passes."""
    import pandas as pd

    from training import retrain as retrain_module

    settings = get_settings()
    if feedback is not None:
        decisions = pd.read_csv(feedback, dtype=str, keep_default_na=False)
    else:
        from serving import review

        decisions, _ = review.export(_engine())
    try:
        done = retrain_module.run(settings, decisions, candidate, console=console)
    except (ValueError, FileNotFoundError, LookupError) as err:
        _fail(err)
    added = ", ".join(f"{n} {k} rows" for k, n in done.rows_added.items())
    console.print(f"trained version {done.version} with {added}; {done.held_out} recent seizures held out")
    table = Table(title="promotion gates")
    for col in ("gate", "challenger", "champion", "passed"):
        table.add_column(col)
    for g in done.gates:
        table.add_row(g.name, f"{g.challenger:.4f}", f"{g.champion:.4f}", "yes" if g.passed else "[red]no[/red]")
    console.print(table)
    console.print(done.message)
    if not done.promoted:
        raise typer.Exit(1)


@app.command()
def drift(
    since: Annotated[
        str | None, typer.Option(help="first day of recent traffic, YYYY-MM-DD (default: a week ago)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="model URI or directory (default: the champion)")] = None,
    out: Annotated[Path | None, typer.Option(help="HTML report (a PNG goes beside it)")] = None,
) -> None:
    """Compare recent scored traffic with the training data; exit 1 when a measure is over its limit."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd
    from sqlalchemy import select

    from models.loader import load_model
    from serving import db
    from training import corpus as corpus_module
    from training import drift as drift_module

    settings = get_settings()
    try:
        start = datetime.fromisoformat(since) if since else datetime.now(UTC) - timedelta(days=7)
    except ValueError:
        _fail(ValueError(f"--since {since!r} must be a date like 2026-11-01"))
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    table = db.score_audit
    with _engine().connect() as conn:
        rows = conn.execute(
            select(table.c.score, table.c.flagged, table.c.category, table.c.oov_rate, table.c.novelty).where(
                table.c.created_at >= start
            )
        ).all()
    recent = pd.DataFrame(rows, columns=["score", "flagged", "category", "oov_rate", "novelty"])
    if recent.empty:
        _fail(ValueError(f"no scored traffic since {start.date()}; pick an earlier --since"))
    try:
        flagger, info = load_model(model or settings.model_uri, settings)
        validation = corpus_module.load(settings.corpus)["validation"]
    except (FileNotFoundError, LookupError) as err:
        _fail(err)
    with console.status(f"scoring the validation split ({len(validation)} rows) as the reference"):
        ref = drift_module.reference(flagger, validation["text"].tolist(), validation["label"].to_numpy())
    report = drift_module.compare(recent, ref)
    target = out or Path("var") / "reports" / f"drift-{datetime.now(UTC):%Y%m%d-%H%M}.html"
    drift_module.write(report, target, f"drift since {start.date()} ({info.get('uri', '')})")
    shown = Table(title=f"drift: {len(recent)} recent descriptions against the validation split")
    for col in ("measure", "value", "limit", "", "detail"):
        shown.add_column(col)
    for m in report.measures:
        flag = "[red]OVER[/red]" if m.over else "ok"
        shown.add_row(m.name, f"{m.value:.4f}", f"{m.limit:.4f}", flag, m.detail)
    console.print(shown)
    console.print(f"wrote {target} and {target.with_suffix('.png')}")
    if report.drifted:
        raise typer.Exit(1)


models_app = typer.Typer(no_args_is_help=True, help="Registered model versions.")
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """Versions, aliases, headline metrics, the data that went in, and who promoted what when."""
    from models import registry

    settings = get_settings()
    registry.configure(settings.tracking)
    table = Table(title=f"registered model {settings.model_name}")
    for col in ("version", "aliases", "test PR-AUC", "dev-eval PR-AUC", "data", "promoted"):
        table.add_column(col)
    for v in registry.versions(settings.model_name):
        data = f"corpus {v.tags.get('corpus_digest', '')[:12]}"
        if v.tags.get("seizure_versions", "none") != "none":
            data += f"; seizures {v.tags['seizure_versions']}"
        if v.tags.get("feedback_rows", "0") not in ("0", ""):
            data += f"; {v.tags['feedback_rows']} decisions"
        table.add_row(
            v.version,
            ",".join(v.aliases),
            f"{v.metrics.get('test_pr_auc', float('nan')):.4f}",
            f"{v.metrics.get('dev_eval_pr_auc', float('nan')):.4f}",
            data,
            v.promoted,
        )
    console.print(table)


users_app = typer.Typer(no_args_is_help=True, help="Officer accounts for the review workspace.")
app.add_typer(users_app, name="users")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="sign-in name, e.g. a.smith")],
    role: Annotated[str, typer.Option(help="officer or admin")] = "officer",
) -> None:
    """Add an account; the password is read from stdin when it is not a terminal, else prompted twice."""
    import getpass

    from serving import users

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            _fail(ValueError("the passwords differ; nothing was created"))
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        user = users.add(_engine(), name, password, role)
    except users.UserError as err:
        _fail(err)
    console.print(f"added {user.role} {user.username}")


audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log of decisions and sign-ins.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain; exit 1 and name the first bad row if it was altered."""
    from serving import audit

    verdict = audit.verify(_engine())
    console.print(("[green]ok[/green]: " if verdict.ok else "[red]broken[/red]: ") + verdict.reason)
    if not verdict.ok:
        raise typer.Exit(1)


feedback_app = typer.Typer(no_args_is_help=True, help="Officers' decisions as training data.")
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(output: Annotated[Path, typer.Option("-o", "--output", help="CSV to write")]) -> None:
    """Decided items as labelled rows; referred and unconfirmed ones are held back and counted."""
    from serving import review

    frame, held = review.export(_engine())
    frame.to_csv(output, index=False)
    console.print(f"wrote {len(frame)} labelled rows to {output} ({int(frame['label'].sum())} controlled)")
    for reason, n in sorted(held.items()):
        console.print(f"  held back: {n} {reason}")


keys_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys.")
app.add_typer(keys_app, name="keys")


def _engine() -> Any:
    from serving import db

    return db.connect(get_settings().database_url)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="screening, officer or admin")],
    name: Annotated[str, typer.Option(help="who holds the key, e.g. customs-gateway")] = "unnamed",
) -> None:
    """Create a key; it is printed once, as the last word of the last line, and stored only as a hash."""
    from serving import keys

    try:
        record, secret = keys.create(_engine(), role, name)
    except ValueError as err:
        _fail(err)
    console.print(f"created {record.role} key {record.id} for {record.name}; it is shown only now, store it safely")
    # Plain print: no wrapping or markup may split the key.
    print(f"key: {secret}")


@keys_app.command("list")
def keys_list() -> None:
    """Every key's id, name, role and dates (never a secret)."""
    from serving import keys

    table = Table(title="API keys")
    for col in ("id", "name", "role", "created", "revoked"):
        table.add_column(col)
    for k in keys.listing(_engine()):
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
        table.add_row(k.id, k.name, k.role, k.created_at.isoformat(timespec="seconds"), revoked)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id (from `dualscreen keys list`)")]) -> None:
    """Revoke a key; it fails authentication from the next request on."""
    from serving import keys

    if not keys.revoke(_engine(), key_id):
        _fail(ValueError(f"no live key with id {key_id!r}; see `dualscreen keys list`"))
    console.print(f"revoked {key_id}")


def main() -> None:
    """Entry point for `python -m dualscreen`."""
    app()
