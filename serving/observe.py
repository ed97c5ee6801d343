"""What operators see: JSON log lines and Prometheus metrics.

Log lines carry the request id, key id, model version, status and timing, never a description or
a key. Metrics live in a registry per app, so tests and several apps in one process never mix.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

LOGGER = "dualscreen.serving"
# Only these extra fields reach the log; anything else a caller passes is dropped, by design.
FIELDS = ("request_id", "key_id", "role", "model_version", "route", "method", "status", "ms", "items", "flagged")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and the whitelisted request fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
        return json.dumps(line)


def configure_logging(level: str = "INFO") -> None:
    """Send the service's logs to stderr as JSON lines (called at start-up, never at import)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in (LOGGER, "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    # The access log would repeat each request without the fields above; the service logs its own.
    logging.getLogger("uvicorn.access").disabled = True


class Metrics:
    """The service's Prometheus metrics.

    With several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set, as ``dualscreen serve
    --workers N`` does) each process writes its values to that directory and ``exposition`` sums
    them, so a scrape sees the whole service whichever worker answers it.
    """

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._current: tuple[str, str] | None = None
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dualscreen_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "dualscreen_request_seconds",
            "request latency by route",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.descriptions = Counter("dualscreen_descriptions", "descriptions scored", registry=self.registry)
        self.flags = Counter(
            "dualscreen_flags", "descriptions flagged, by category", ["category"], registry=self.registry
        )
        self.refused = Counter("dualscreen_refused", "requests refused by a limit", ["reason"], registry=self.registry)
        self.model = Gauge(
            "dualscreen_model_info",
            "the model being served (value 1)",
            ["version", "sha256"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.swaps = Counter("dualscreen_model_swaps", "models swapped in without a restart", registry=self.registry)
        self.busy = Gauge(
            "dualscreen_scoring_busy", "requests scoring now", registry=self.registry, multiprocess_mode="livesum"
        )

    def serving(self, version: str, sha256: str) -> None:
        """Record which model is served now."""
        if self._current is not None and self._current != (version, sha256):
            self.model.labels(version=self._current[0], sha256=self._current[1]).set(0)
        self._current = (version, sha256)
        self.model.labels(version=version, sha256=sha256).set(1)

    def exposition(self) -> bytes:
        """The Prometheus text of this process, or of every worker process in multiprocess mode."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
        return generate_latest(combined)
