"""Background housekeeping: record expiries as they happen and purge finished approvals after
the retention period, so no store grows without bound. A thread for sync hosts, a coroutine for
asyncio hosts; both survive a failing round (logged) and stop promptly.

With a lease (`storage.leases`), only the process holding it sweeps: every worker and host
sharing a store runs a sweeper, one of them leads, and another takes over when it dies. The
lease is renewed every `lease.renew_every` seconds, between rounds."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from ..errors import ConfigError
from ..observability import metrics
from ..storage.leases import Lease, LocalLease
from .service import ApprovalService

__all__ = ["SWEEPER_LEASE", "ApprovalSweeper", "run_sweeper", "sweep_once"]

logger = logging.getLogger(__name__)

SWEEPER_LEASE = "sweeper"


def sweep_once(service: ApprovalService) -> tuple[int, int]:
    """One round: `(expired, purged)`. Errors are logged, never raised (the next round retries)."""
    try:
        expired = service.sweep()
        purged = service.purge()
    except Exception as exc:  # a failing round must not stop housekeeping for good
        logger.warning("approval sweep failed: %s: %s", type(exc).__name__, exc)
        return 0, 0
    metrics.approval_state("expired", expired)
    return expired, purged


def _check_interval(interval: float) -> float:
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval < float("inf"):
        raise ConfigError(f"sweeper interval must be a positive number of seconds, not `{interval!r}`")
    return float(interval)


class _Turns:
    """When to renew the lease and when to sweep: the one schedule of both sweepers."""

    def __init__(self, interval: float, lease: Lease | None) -> None:
        self.interval = _check_interval(interval)
        self.lease: Lease = lease if lease is not None else LocalLease(SWEEPER_LEASE, self.interval)
        self.leading = False
        self._last_sweep: float | None = None

    @property
    def tick(self) -> float:
        return min(self.interval, self.lease.renew_every)

    def due(self) -> bool:
        """Renew the lease; True when this process leads and a round is due."""
        leading = self.lease.hold()
        if leading != self.leading:
            self.leading = leading
            metrics.leader(self.lease.name, leading)
            if not leading:
                self._last_sweep = None
        now = time.monotonic()
        if not leading or (self._last_sweep is not None and now - self._last_sweep < self.interval - 1e-3):
            return False
        self._last_sweep = now
        return True

    def stop(self) -> None:
        if self.leading:
            metrics.leader(self.lease.name, False)
        self.leading = False
        try:
            self.lease.release()
        except Exception as exc:  # the lease then expires by itself
            logger.warning("releasing the sweeper lease failed: %s", exc)


class ApprovalSweeper:
    """Runs `sweep_once` every `interval` seconds in a daemon thread (while holding `lease`)."""

    def __init__(self, service: ApprovalService, interval: float = 60.0, *, lease: Lease | None = None) -> None:
        self.service = service
        self._turns = _Turns(interval, lease)
        self.interval = self._turns.interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    @property
    def leading(self) -> bool:
        """Whether this sweeper held the lease at its last renewal."""
        return self._turns.leading

    def start(self) -> ApprovalSweeper:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="irgov-approval-sweeper", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            if self._turns.due():
                sweep_once(self.service)
                self.rounds += 1
            if self._stop.wait(self._turns.tick):
                self._turns.stop()
                return

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> ApprovalSweeper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def run_sweeper(service: ApprovalService, interval: float = 60.0, *, lease: Lease | None = None) -> None:
    """Sweep forever (until cancelled) without blocking the event loop, while holding `lease`."""
    turns = _Turns(interval, lease)
    try:
        while True:
            if await asyncio.to_thread(turns.due):
                await asyncio.to_thread(sweep_once, service)
            await asyncio.sleep(turns.tick)
    finally:
        await asyncio.shield(asyncio.to_thread(turns.stop))
