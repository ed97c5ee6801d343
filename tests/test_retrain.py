"""Retraining: seizure ingest (per-row errors, idempotent), retrain with gates, poisoning, rollback, drift."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from dualscreen.cli import app as cli
from models import registry, store
from models.controllist import ControlList
from models.settings import PROJECT_DIR, Settings, get_settings
from serving import db, keys, schemas, scoring
from serving.app import create_app, score_and_record
from serving.observe import Metrics
from tests import tiny
from training import drift, retrain, seizures
from training import train as train_module

SAMPLE = PROJECT_DIR / "data" / "samples" / "seizures.csv"
BAD_ROWS = {15, 28, 30, 32, 41, 48}


# ----- ingest --------------------------------------------------------------------------------------


def test_ingest_reports_schema_errors_per_row(tmp_path: Path, controls: ControlList) -> None:
    done = seizures.ingest(SAMPLE, tmp_path / "seizures", controls)
    assert done.new and done.accepted == 61
    assert set(done.rejected["row"]) == BAD_ROWS
    reasons = dict(zip(done.rejected["row"], done.rejected["reason"], strict=True))
    assert reasons[15].startswith("hs_code must be 6, 8 or 10 digits")
    assert reasons[28].startswith("category must be one of")
    assert reasons[30] == "duplicate of row 26"
    assert reasons[32].startswith("seizure_date must be a real date")
    assert reasons[41].startswith("description must be 1 to 2000")
    assert reasons[48].startswith("description must be 1 to 2000")
    assert done.rejects_file is not None
    written = pd.read_csv(done.rejects_file)
    assert set(written["row"]) == BAD_ROWS and list(written.columns) == ["row", "column", "reason", "value"]
    stored = seizures.load_all(tmp_path / "seizures")
    assert len(stored) == 61 and stored["version"].nunique() == 1


def test_ingest_twice_is_a_no_op(tmp_path: Path, controls: ControlList) -> None:
    first = seizures.ingest(SAMPLE, tmp_path / "s", controls)
    again = seizures.ingest(SAMPLE, tmp_path / "s", controls)
    assert first.new and not again.new and again.accepted == 0
    assert "already ingested" in again.message
    assert len(seizures.versions(tmp_path / "s")) == 1 and len(seizures.load_all(tmp_path / "s")) == 61


def test_ingest_reads_xlsx_and_parquet_alike(tmp_path: Path, controls: ControlList) -> None:
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    frame.to_excel(tmp_path / "s.xlsx", index=False)
    frame.to_parquet(tmp_path / "s.parquet", index=False)
    from_xlsx = seizures.ingest(tmp_path / "s.xlsx", tmp_path / "a", controls)
    from_parquet = seizures.ingest(tmp_path / "s.parquet", tmp_path / "b", controls)
    from_csv = seizures.ingest(SAMPLE, tmp_path / "c", controls)
    assert from_xlsx.version and from_parquet.version and from_csv.version
    assert from_xlsx.version.version == from_parquet.version.version == from_csv.version.version


def test_ingest_new_rows_only_make_a_new_version(tmp_path: Path, controls: ControlList) -> None:
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    frame.iloc[:30].to_csv(tmp_path / "early.csv", index=False)
    seizures.ingest(tmp_path / "early.csv", tmp_path / "s", controls)
    later = seizures.ingest(SAMPLE, tmp_path / "s", controls)
    assert later.new and (later.rejected["reason"] == "already ingested in an earlier version").sum() >= 25
    assert len(seizures.versions(tmp_path / "s")) == 2 and len(seizures.load_all(tmp_path / "s")) == 61


def test_ingest_refuses_a_file_without_required_columns(tmp_path: Path, controls: ControlList) -> None:
    pd.DataFrame({"date": ["2025-01-01"], "description": ["X"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(seizures.SeizureInputError, match="seizure_date, category"):
        seizures.ingest(tmp_path / "bad.csv", tmp_path / "s", controls)
    with pytest.raises(seizures.SeizureInputError, match="CSV, XLSX or Parquet"):
        seizures.ingest(tmp_path / "bad.json", tmp_path / "s", controls)


def test_ingest_cli_prints_the_rejected_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUALSCREEN_DATASETS_DIR", str(tmp_path / "datasets"))
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["ingest", "seizures", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert "stored 61 rows" in result.output and "6 rows rejected" in result.output
    assert "duplicate of row 26" in result.output
    again = CliRunner().invoke(cli, ["ingest", "seizures", str(SAMPLE)])
    assert again.exit_code == 0 and "nothing new" in again.output
    assert "62 rows were already ingested" in again.output and "5 rows rejected" in again.output


# ----- retraining ------------------------------------------------------------------------------------


@dataclass
class Workspace:
    env: dict[str, str]
    settings: Settings


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("retrain")
    env = tiny.environment(data_dir, root)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        settings = get_settings()
        train_module.run(settings, {"folds": 2}, ["flagger"], robustness_sample=20)
        yield Workspace(env, settings)
    get_settings.cache_clear()


@pytest.fixture
def ws(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    for key, value in workspace.env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    registry.configure(workspace.settings.tracking)
    return workspace


@pytest.mark.slow
def test_retrain_on_seizures_lifts_recall_on_held_out_seizures(ws: Workspace, controls: ControlList) -> None:
    before = registry.by_alias(ws.settings.model_name, registry.CHAMPION)
    assert before is not None
    seizures.ingest(SAMPLE, ws.settings.seizures_dir, controls)
    done = retrain.run(ws.settings, None, ["flagger"], params={"folds": 2})
    assert done.version is not None and int(done.version) > int(before.version)
    assert done.rows_added["seizures"] >= 2 * 45 and done.held_out == 15
    gate = next(g for g in done.gates if g.name == "held-out seizures recall")
    assert gate.challenger > gate.champion, gate
    run = registry.versions(ws.settings.model_name)[0]
    assert run.version == done.version
    assert run.tags["seizure_versions"] == seizures.versions(ws.settings.seizures_dir)[0].version


@pytest.mark.slow
def test_retrain_poisoned_decisions_are_stopped_by_the_canary_gate(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Train as on a full corpus: the stacker learns the parts' weights from the (poisoned) labels
    # (on a tiny set it would count each part's evidence once, label-free parts included).
    monkeypatch.setattr("models.flagger.SMALL", 10)
    champion = registry.by_alias(ws.settings.model_name, registry.CHAMPION)
    assert champion is not None
    poisoned = pd.DataFrame(
        {
            "description": [f"THIODIGLYCOL 99% {n} KG DRUMS LOT {i}" for i, n in enumerate(range(20, 420, 10))],
            "hs_code": "293070",
            "label": 0,
            "category": "none",
            "provision": "",
            "decided_by": "mallory",
            "decided_at": "2026-11-01T10:00:00+00:00",
            "model_version": champion.version,
        }
    )
    done = retrain.run(ws.settings, poisoned, ["flagger"], params={"folds": 2})
    canary = next(g for g in done.gates if g.name == "canary rows flagged")
    assert not canary.passed and not done.promoted
    after = registry.by_alias(ws.settings.model_name, registry.CHAMPION)
    assert after is not None and after.version == champion.version


@pytest.mark.slow
def test_rollback_restores_the_previous_champion_and_the_service_serves_it(ws: Workspace, tmp_path: Path) -> None:
    name = ws.settings.model_name
    first = registry.by_alias(name, registry.CHAMPION)
    train_module.run(ws.settings, {"folds": 2}, ["tfidf"], robustness_sample=20)  # a newer version to promote
    newest = registry.versions(name)[0]
    assert first is not None and newest.version != first.version
    registry.move_champion(name, newest.version)
    settings = ws.settings.model_copy(
        update={"model_poll_seconds": 0.05, "database_url": f"sqlite:///{tmp_path / 'serve.db'}"}
    )
    with TestClient(create_app(settings)) as client:
        secret = keys.create(client.app.state.engine, "screening", "gateway")[1]  # type: ignore[attr-defined]
        headers = {"Authorization": f"Bearer {secret}"}
        assert client.get("/v1/model", headers=headers).json()["version"] == newest.version
        result = CliRunner().invoke(cli, ["rollback"])
        assert result.exit_code == 0, result.output
        deadline = time.monotonic() + 10
        while client.get("/v1/model", headers=headers).json()["version"] != first.version:
            assert time.monotonic() < deadline, "the service did not pick up the rollback"
            time.sleep(0.05)
    listed = CliRunner().invoke(cli, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    assert "champion" in listed.output and f"{newest.version}" in listed.output and "by " in listed.output


# ----- drift ----------------------------------------------------------------------------------------

SHIFTED = [
    "ZYXOQUARB FLENTRIX {n} PCS", "QWOMBLE GRANTIVOX {n} KG", "BLIVETRON SNARGLE KIT {n}", "VORPLEX DRUNDLE {n} L",
]  # fmt: skip


def test_drift_flags_a_shifted_sample(tiny_model: Path) -> None:
    flagger = store.load(tiny_model)
    validation = tiny.frames()["validation"]
    ref = drift.reference(flagger, validation["text"].tolist(), validation["label"].to_numpy())
    resampled = ref[ref["label"] == 0].sample(n=200, replace=True, random_state=1)  # ordinary traffic
    steady = drift.compare(resampled, ref)
    assert not steady.drifted, [(m.name, m.value) for m in steady.measures]
    shifted_texts = [t.format(n=n) for t in SHIFTED for n in range(10, 60)]
    shifted = drift.reference(flagger, shifted_texts, np.zeros(len(shifted_texts), dtype=int))
    report = drift.compare(shifted, ref)
    assert report.drifted
    oov = next(m for m in report.measures if m.name.startswith("out-of-vocabulary"))
    assert oov.over and oov.value > 0.5


def test_drift_cli_reads_the_audit_store_and_exits_1(
    tiny_model: Path, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "DUALSCREEN_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}",
        "DUALSCREEN_CORPUS_DIR": str(tiny.write_corpus(tmp_path / "corpus")),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = get_settings().model_copy(update={"model_uri": str(tiny_model)})
    served = scoring.load(settings)
    engine = db.connect(settings.database_url)
    items = [schemas.Item(description=t.format(n=n)) for t in SHIFTED for n in range(10, 40)]
    score_and_record(engine, served, "req", "key", items, False, Metrics())
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["drift", "--model", str(tiny_model), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "OVER" in result.output and out.is_file() and out.with_suffix(".png").stat().st_size > 1000
    assert "out-of-vocabulary" in out.read_text()


@pytest.mark.slow
def test_mlflow_server_round_trip(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Train, register, promote and serve by alias against a separate MLflow tracking server."""
    import os
    import subprocess
    import sys

    from tests.servers import free_port, wait_ready
    from training import catalog

    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_bin), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        uri = f"http://127.0.0.1:{port}"
        wait_ready(f"{uri}/health", server, 180, "mlflow server")
        env = {**tiny.environment(data_dir, tmp_path), "DUALSCREEN_TRACKING_URI": uri}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        settings = get_settings()
        train_module.run(settings, {"folds": 2}, ["flagger"], robustness_sample=20)  # version 1, champion
        train_module.run(settings, {"folds": 2}, ["flagger"], robustness_sample=20)  # version 2, same data and seed
        moved, gates, message = catalog.promote(settings)
        assert moved and all(g.passed for g in gates), message
        champion = registry.alias_version(settings.model_name, registry.CHAMPION)
        assert champion == "2"
        served = settings.model_copy(update={"model_poll_seconds": 0})
        with TestClient(create_app(served)) as client:
            secret = keys.create(client.app.state.engine, "screening", "gw")[1]  # type: ignore[attr-defined]
            model = client.get("/v1/model", headers={"Authorization": f"Bearer {secret}"}).json()
        assert model["version"] == champion and model["alias"] == "champion"
        assert any((tmp_path / "artifacts").rglob("MANIFEST.json")), "artifacts went to the server's store"
    finally:
        server.terminate()
        server.wait(timeout=30)
