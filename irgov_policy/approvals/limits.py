"""Limits on failed consumes, per tenant and per principal.

Each failed consume (an invalid, mismatched, expired or spent token) writes a critical, fsync'd
`ir.approval_invalid` event, so a client that guesses tokens would flood the outbox. After
`limit` failures in a fixed window, further consumes for that tenant, or by that principal, are
refused before the store is touched (no event, no write) until the window ends. Reaching the
limit is itself reported once per window and key, by the caller, as `ir.consume_rate_limited`.

Counters live in this process: with several hosts, each enforces the limit on what it serves.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import IdempotencyConflictError, RateLimitedError
from ..events.bus import EventBus
from ..events.envelope import new_event
from ..events.types import ExtensionEventType
from .records import ConsumeResult
from .service import ApprovalService

__all__ = ["FailureLimiter", "LimitReached", "consume_within_limits", "replay_within_limits"]

logger = logging.getLogger(__name__)

# Past this many tracked keys, windows that have ended are forgotten, so memory stays bounded.
_PRUNE_AT = 10_000


@dataclass(frozen=True)
class LimitReached:
    """A key that has just reached the limit in this window."""

    scope: str  # "tenant" or "principal"
    name: str
    failures: int


@dataclass
class _Window:
    started: float
    failures: int = 0


class FailureLimiter:
    def __init__(self, limit: int, window_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}

    def _keys(self, tenant_id: str, principal: str | None) -> list[tuple[str, str]]:
        return [("tenant", tenant_id)] + ([("principal", principal)] if principal is not None else [])

    def _current(self, key: tuple[str, str], now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now - window.started >= self.window_seconds:
            if len(self._windows) >= _PRUNE_AT:
                self._windows = {k: w for k, w in self._windows.items() if now - w.started < self.window_seconds}
            window = self._windows[key] = _Window(now)
        return window

    def check(self, tenant_id: str, principal: str | None) -> None:
        """Raise `RateLimitedError` when the tenant or the principal is over the limit."""
        now = self._clock()
        with self._lock:
            for key in self._keys(tenant_id, principal):
                window = self._current(key, now)
                if window.failures >= self.limit:
                    retry = max(1, math.ceil(window.started + self.window_seconds - now))
                    raise RateLimitedError(f"too many failed consumes for {key[0]} `{key[1]}`: {window.failures} "
                                           f"in {self.window_seconds:g} s; retry in {retry} s", retry)

    def record_failure(self, tenant_id: str, principal: str | None) -> list[LimitReached]:
        """Count a failed consume; returns the keys that reached the limit with it."""
        now = self._clock()
        reached: list[LimitReached] = []
        with self._lock:
            for key in self._keys(tenant_id, principal):
                window = self._current(key, now)
                window.failures += 1
                if window.failures == self.limit:
                    reached.append(LimitReached(key[0], key[1], window.failures))
        return reached


def consume_within_limits(limiter: FailureLimiter, service: ApprovalService, bus: EventBus, token: str, *,
                          tenant_id: str, ir_hash: str, consumed_by: str | None,
                          idempotency_key: str | None = None,
                          answer: Callable[[ConsumeResult], str | None] | None = None) -> ConsumeResult:
    """`service.consume`, refused with `RateLimitedError` (before the store is touched) when the
    tenant or the principal is over the limit; a failure that reaches the limit is published
    once as `ir.consume_rate_limited`. A reused idempotency key counts as a failure too."""
    limiter.check(tenant_id, consumed_by)
    try:
        result = service.consume(token, tenant_id=tenant_id, ir_hash=ir_hash, consumed_by=consumed_by,
                                 idempotency_key=idempotency_key, answer=answer)
    except IdempotencyConflictError:
        _count_failure(limiter, bus, tenant_id, consumed_by)
        raise
    if not result.success:
        _count_failure(limiter, bus, tenant_id, consumed_by)
    return result


def replay_within_limits(limiter: FailureLimiter, service: ApprovalService, bus: EventBus, token: str, *,
                         tenant_id: str, ir_hash: str, consumed_by: str | None,
                         idempotency_key: str) -> tuple[ConsumeResult, str | None] | None:
    """`service.replay_consume` under the same limits as `consume_within_limits`: refused when
    over the limit, and a reused idempotency key counts as a failure."""
    limiter.check(tenant_id, consumed_by)
    try:
        return service.replay_consume(token, tenant_id=tenant_id, ir_hash=ir_hash, consumed_by=consumed_by,
                                      idempotency_key=idempotency_key)
    except IdempotencyConflictError:
        _count_failure(limiter, bus, tenant_id, consumed_by)
        raise


def _count_failure(limiter: FailureLimiter, bus: EventBus, tenant_id: str, consumed_by: str | None) -> None:
    for hit in limiter.record_failure(tenant_id, consumed_by):
        logger.warning("%s `%s` reached %d failed consumes in %g s: further consumes are refused until "
                       "the window ends", hit.scope, hit.name, hit.failures, limiter.window_seconds)
        bus.publish(new_event(ExtensionEventType.CONSUME_RATE_LIMITED, {
            "scope": hit.scope, "name": hit.name, "failures": hit.failures, "limit": limiter.limit,
            "window_seconds": limiter.window_seconds}, tenant_id=tenant_id))
