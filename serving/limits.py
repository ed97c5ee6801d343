"""Limits that protect the service: body size, per-key rate, and a bounded queue for the CPU.

- ``BodyLimit`` (ASGI middleware) answers 413 from the ``Content-Length`` header before reading a
  byte, and stops a streamed body the moment it passes the limit.
- ``RateLimiter`` is a generic cell rate algorithm per key, kept in the database so that every worker
  and replica shares it: ``600/minute`` allows bursts of up to 600 requests and one more every 0.1 s;
  a refused request learns when the next is due (``Retry-After``).
- ``Admission`` lets ``slots`` requests score at once and ``queue`` more wait; beyond that the
  service answers 503 at once with ``Retry-After`` instead of building an unbounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Engine, case, select
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.db import rate_limits


class Refused(Exception):
    """A request the limits turned away, with its status, message and Retry-After seconds."""

    def __init__(self, status: int, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Reject request bodies over ``limit`` bytes with 413, before reading them in full."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _message(self) -> str:
        return f"request body is over the limit of {self.limit} bytes; send fewer items per request"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _reply(send, 400, "Content-Length must be a whole number of bytes")
                return
            if size > self.limit:
                await _reply(send, 413, self._message())
                return
        received = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit and not refused:
                    # Answer now: the app's own error handling would turn a failed read into a 400.
                    refused = True
                    if not started:
                        await _reply(send, 413, self._message())
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, tracking_send)


class RateLimiter:
    """Per key, ``count`` requests per ``seconds`` with bursts up to ``count`` (GCRA), kept in the database.

    The state is one row per key (its theoretical arrival time), updated in one conditional UPDATE, so
    the limit holds across every worker process and replica that shares the database.
    """

    def __init__(self, count: int, seconds: float, engine: Engine, clock: Any = time.time) -> None:
        self.interval = seconds / count
        self.tolerance = seconds - self.interval
        self.engine = engine
        self.clock = clock

    def take(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        stamp = float(self.clock())
        table = rate_limits
        start = case((table.c.tat > stamp, table.c.tat), else_=stamp)
        for _ in range(2):  # a second pass only when two first requests of a key race to insert its row
            try:
                with self.engine.begin() as conn:
                    allowed = conn.execute(
                        table.update()
                        .where(table.c.key_id == key, start - stamp <= self.tolerance)
                        .values(tat=start + self.interval)
                    ).rowcount
                    if allowed:
                        return 0.0
                    row = conn.execute(select(table.c.tat).where(table.c.key_id == key)).first()
                    if row is None:
                        conn.execute(table.insert().values(key_id=key, tat=stamp + self.interval))
                        return 0.0
                    return max(float(row.tat), stamp) - stamp - self.tolerance
            except IntegrityError:
                continue
        return self.interval

    def check(self, key: str) -> None:
        """Raise ``Refused`` (429) when ``key`` is over its rate."""
        wait = self.take(key)
        if wait > 0:
            detail = "rate limit exceeded for this API key; retry after the Retry-After seconds"
            raise Refused(429, detail, max(1, math.ceil(wait)))


class Admission:
    """At most ``slots`` requests scoring and ``queue`` waiting; the next one is refused with 503."""

    def __init__(self, slots: int, queue: int) -> None:
        self.slots = max(1, slots)
        self.queue = max(0, queue)
        self._semaphore = asyncio.Semaphore(self.slots)
        self._waiting = 0
        self.busy = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a scoring slot for the body of the ``async with``."""
        if self._semaphore.locked() and self._waiting >= self.queue:
            raise Refused(503, "the service is at capacity; retry after the Retry-After seconds", 1)
        self._waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._waiting -= 1
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
            self._semaphore.release()
