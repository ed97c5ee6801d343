"""Facts about the environment, read once from ``DUALSCREEN_*`` variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Paths, tracking store, model and database locations; never hyperparameters."""

    model_config = SettingsConfigDict(env_prefix="DUALSCREEN_", extra="ignore")

    data_dir: Path = PROJECT_DIR / "data"
    corpus_dir: Path | None = Field(
        default=None, description="where `corpus` writes and `train` reads; data_dir/corpus"
    )
    tracking_uri: str | None = Field(default=None, description="MLflow tracking URI; MLFLOW_TRACKING_URI, then sqlite")
    model_name: str = "dualscreen"
    model_uri: str = "models:/dualscreen@champion"
    database_url: str = f"sqlite:///{PROJECT_DIR / 'var' / 'dualscreen.db'}"
    seed: int = 13

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        if self.corpus_dir is None:
            self.corpus_dir = self.data_dir / "corpus"
        if self.tracking_uri is None:
            self.tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_DIR / 'mlflow.db'}"
        return self

    @property
    def corpus(self) -> Path:
        """The corpus directory, resolved."""
        assert self.corpus_dir is not None
        return self.corpus_dir

    @property
    def tracking(self) -> str:
        """The tracking URI, resolved."""
        assert self.tracking_uri is not None
        return self.tracking_uri


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests clear the cache to override them."""
    return Settings()
