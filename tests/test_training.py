from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dualscreen.cli import app
from models import registry, store
from models.controllist import ANNEX_FILE
from models.settings import Settings, get_settings
from tests import tiny
from training import catalog
from training import train as train_module

pytestmark = pytest.mark.slow


@dataclass
class Workspace:
    env: dict[str, str]
    settings: Settings
    outcomes: list[train_module.Outcome]
    model_dir: Path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("training")
    env = tiny.environment(data_dir, root)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        settings = get_settings()
        outcomes = train_module.run(settings, {"folds": 2}, ["tfidf", "flagger"], robustness_sample=20)
        model_dir = store.save(outcomes[0].flagger, root / "local-model", annex=Path(data_dir) / ANNEX_FILE)
        yield Workspace(env, settings, outcomes, model_dir)
    get_settings.cache_clear()


@pytest.fixture
def ws(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    for key, value in workspace.env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    registry.configure(workspace.settings.tracking)
    return workspace


def _register_copy(ws: Workspace, tmp_path: Path, invert: bool) -> str:
    flagger, _ = catalog.load_model(f"models:/{ws.settings.model_name}@champion", ws.settings)
    if invert:  # the same model ranking every description backwards: strictly worse
        a, b = flagger.platt_
        flagger.platt_ = (-a, -b)
    directory = store.save(flagger, tmp_path / "copy", annex=ws.settings.data_dir / ANNEX_FILE)
    with registry.start_run("copy", {"candidate": "copy"}):
        version = registry.log_model(directory, ["THIODIGLYCOL"], registered_name=ws.settings.model_name)
    assert version is not None
    registry.set_alias(ws.settings.model_name, registry.CHALLENGER, version)
    return version


def test_train_logs_a_run_per_candidate_and_registers_a_champion(ws: Workspace) -> None:
    assert {o.name for o in ws.outcomes} == {"tfidf", "flagger"}
    champion = registry.by_alias(ws.settings.model_name, registry.CHAMPION)
    assert champion is not None
    assert champion.run_id == ws.outcomes[0].run_id
    assert "validation_pr_auc" in champion.metrics and "dev_eval_pr_auc" in champion.metrics


def test_train_load_by_alias_scores_like_the_trained_model(ws: Workspace) -> None:
    flagger, info = catalog.load_model(f"models:/{ws.settings.model_name}@champion", ws.settings)
    texts = ["THIODIGLYCOL 99% 10 DRUMS", "COTTON T-SHIRTS"]
    expected = ws.outcomes[0].flagger.predict_proba(texts)[:, 1]
    assert flagger.predict_proba(texts)[:, 1] == pytest.approx(expected, abs=1e-9)
    assert info["alias"] == "champion" and len(info["sha256"]) == 64


def test_train_pyfunc_from_code_predicts(ws: Workspace) -> None:
    import mlflow

    champion = registry.by_alias(ws.settings.model_name, registry.CHAMPION)
    assert champion is not None
    model = mlflow.pyfunc.load_model(f"models:/{ws.settings.model_name}/{champion.version}")
    out = model.predict(pd.DataFrame({"description": ["THIODIGLYCOL 99%", "COTTON SOCKS"]}))
    assert list(out.columns) == ["score", "flagged", "category", "provision"]
    assert out["score"].iloc[0] > out["score"].iloc[1]


def test_promote_refuses_a_worse_challenger(ws: Workspace, tmp_path: Path) -> None:
    before = registry.by_alias(ws.settings.model_name, registry.CHAMPION)
    version = _register_copy(ws, tmp_path, invert=True)
    moved, gates, message = catalog.promote(ws.settings)
    assert not moved
    assert "not promoted" in message
    assert any(not g.passed for g in gates)
    after = registry.by_alias(ws.settings.model_name, registry.CHAMPION)
    assert before is not None and after is not None and after.version == before.version != version


def test_promote_then_rollback_round_trip(ws: Workspace, tmp_path: Path) -> None:
    before = registry.by_alias(ws.settings.model_name, registry.CHAMPION)
    assert before is not None
    version = _register_copy(ws, tmp_path, invert=False)
    moved, gates, _ = catalog.promote(ws.settings)
    assert moved, [(g.name, g.challenger, g.champion) for g in gates]
    champion = registry.by_alias(ws.settings.model_name, registry.CHAMPION)
    assert champion is not None and champion.version == version
    catalog.rollback(ws.settings)
    restored = registry.by_alias(ws.settings.model_name, registry.CHAMPION)
    assert restored is not None and restored.version == before.version


def test_train_same_seed_and_data_give_the_same_metrics(ws: Workspace) -> None:
    again = train_module.run(ws.settings, {"folds": 2}, ["tfidf", "flagger"], register=False, robustness_sample=20)
    first = {o.name: o.evaluations["test"].metrics for o in ws.outcomes}
    second = {o.name: o.evaluations["test"].metrics for o in again}
    assert first == second


def test_train_rejects_a_malformed_parameter() -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        train_module.parse_params(["tfidf__clf__C"])


def test_score_command_end_to_end(ws: Workspace, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "description": ["THIODIGLYCOL 99% 200 KG DRUMS", "", "COTTON SOCKS"]}).to_csv(
        source, index=False
    )
    target = tmp_path / "out.csv"
    args = ["score", str(source), "-o", str(target), "--model", str(ws.model_dir), "--explain"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert out["id"].tolist() == ["a", "b", "c"]
    assert out.loc[1, "error"] == "description is empty"
    assert float(out.loc[0, "score"]) > float(out.loc[2, "score"])
    explanation = json.loads(out.loc[0, "explanation"])
    assert explanation["hits"][0]["provision"] == "1C350.1"
    assert "1 rows not scored" in " ".join(result.output.split())


def test_score_command_names_the_missing_column(ws: Workspace, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pd.DataFrame({"text": ["x"]}).to_csv(source, index=False)
    result = CliRunner().invoke(
        app, ["score", str(source), "-o", str(tmp_path / "o.csv"), "--model", str(ws.model_dir)]
    )
    assert result.exit_code == 2
    assert "no 'description' column" in " ".join(result.output.split())


def test_evaluate_command_end_to_end(ws: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    dev = ws.settings.data_dir / "eval" / "dev_eval.csv"
    result = CliRunner().invoke(app, ["evaluate", str(dev), "--model", str(ws.model_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())["metrics"]
    for key in ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "brier", "ece", "provision_at_1", "robust_recall_typos"):
        assert key in metrics
    assert 0 <= metrics["pr_auc"] <= 1


def test_evaluate_command_names_a_bad_label(ws: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"description": ["x"], "label": ["yes"]}).to_csv(bad, index=False)
    result = CliRunner().invoke(app, ["evaluate", str(bad), "--model", str(ws.model_dir)])
    assert result.exit_code == 2
    assert "column 'label' must be 0 or 1" in " ".join(result.output.split())


def test_notebook_01_model_review_executes(ws: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    from models.settings import PROJECT_DIR

    monkeypatch.setenv("DUALSCREEN_MODEL_URI", str(ws.model_dir))
    notebook = nbformat.read(PROJECT_DIR / "notebooks" / "01-model-review.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    printed = "".join(
        out.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    assert "threshold" in printed and "=== test" in printed
