"""Facts about the environment, read once from ``DUALSCREEN_*`` variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parents[1]


PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


def parse_rate(value: str) -> tuple[int, float]:
    """``600/minute`` into (600, 60.0); a clear error otherwise."""
    count, _, period = value.strip().partition("/")
    if not count.isdigit() or int(count) < 1 or period not in PERIODS:
        raise ValueError(f"rate limit {value!r} must look like 600/minute (COUNT/second, /minute or /hour)")
    return int(count), PERIODS[period]


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
    datasets_dir: Path = Field(default=PROJECT_DIR / "var" / "datasets", description="ingested data set versions")
    # Serving: where it listens and the limits it enforces.
    host: str = "127.0.0.1"
    port: int = 8000
    rate_limit: str = Field(default="600/minute", description="per API key: COUNT/second|minute|hour")
    max_body_bytes: int = 1_048_576
    scoring_slots: int = Field(default=2, description="requests scored at once; the rest wait in the queue")
    queue_limit: int = Field(default=64, description="requests waiting for a slot before 503")
    model_poll_seconds: float = Field(default=30.0, description="how often to look for a new champion; 0: never")
    threshold: float | None = Field(default=None, description="override the model's stored decision threshold")
    # Review workspace: signed session cookies.
    secret_key: str | None = Field(default=None, description="signs session cookies; var/secret_key when unset")
    session_seconds: int = Field(default=8 * 3600, description="a sign-in lasts this long")
    secure_cookies: bool = Field(default=False, description="send cookies over HTTPS only (set behind TLS)")

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        if self.corpus_dir is None:
            self.corpus_dir = self.data_dir / "corpus"
        if self.tracking_uri is None:
            self.tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_DIR / 'mlflow.db'}"
        return self

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @property
    def rate(self) -> tuple[int, float]:
        """The rate limit as (requests, seconds)."""
        return parse_rate(self.rate_limit)

    @property
    def seizures_dir(self) -> Path:
        """Where seizure data set versions are stored."""
        return self.datasets_dir / "seizures"

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
