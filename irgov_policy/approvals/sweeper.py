"""Background housekeeping: record expiries as they happen and purge finished approvals after
the retention period, so no store grows without bound. A thread for sync hosts, a coroutine for
asyncio hosts; both survive a failing round (logged) and stop promptly."""

from __future__ import annotations

import asyncio
import logging
import threading

from ..errors import ConfigError
from .service import ApprovalService

__all__ = ["ApprovalSweeper", "run_sweeper", "sweep_once"]

logger = logging.getLogger(__name__)


def sweep_once(service: ApprovalService) -> tuple[int, int]:
    """One round: `(expired, purged)`. Errors are logged, never raised (the next round retries)."""
    try:
        expired = service.sweep()
        purged = service.purge()
    except Exception as exc:  # a failing round must not stop housekeeping for good
        logger.warning("approval sweep failed: %s: %s", type(exc).__name__, exc)
        return 0, 0
    return expired, purged


def _check_interval(interval: float) -> float:
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval < float("inf"):
        raise ConfigError(f"sweeper interval must be a positive number of seconds, not `{interval!r}`")
    return float(interval)


class ApprovalSweeper:
    """Runs `sweep_once` every `interval` seconds in a daemon thread."""

    def __init__(self, service: ApprovalService, interval: float = 60.0) -> None:
        self.service = service
        self.interval = _check_interval(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def start(self) -> ApprovalSweeper:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="irgov-approval-sweeper", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            sweep_once(self.service)
            self.rounds += 1
            if self._stop.wait(self.interval):
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


async def run_sweeper(service: ApprovalService, interval: float = 60.0) -> None:
    """Sweep forever (until cancelled) without blocking the event loop."""
    seconds = _check_interval(interval)
    while True:
        await asyncio.to_thread(sweep_once, service)
        await asyncio.sleep(seconds)
