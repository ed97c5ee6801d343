"""Load a flagger from a local model directory or a registry URI, with its hashes verified."""

from __future__ import annotations

import tempfile
from pathlib import Path

from models import registry, store
from models.flagger import Flagger
from models.settings import Settings


def load_model(uri: str, settings: Settings) -> tuple[Flagger, dict[str, str]]:
    """A flagger from a local directory or an MLflow URI (``models:/name@alias``), hashes verified.

    The info holds ``uri``, ``sha256`` and, for registered models, ``name``, ``version`` and ``alias``.
    """
    path = Path(uri)
    if path.is_dir():
        return store.load(path), {"uri": str(path), "sha256": store.digest(path)}
    registry.configure(settings.tracking)
    with tempfile.TemporaryDirectory(prefix="dualscreen-model-") as tmp:
        directory, info = registry.download(uri, Path(tmp))
        # store.load verifies and reads every file now; nothing is read from the directory later.
        return store.load(directory), {**info, "sha256": store.digest(directory)}
