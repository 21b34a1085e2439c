"""Is the kernel's state reachable? Probes of the ledger and the approval store.

`/health` must answer while the request path is stuck (a store paused or write-locked fills the
shared thread pool with waiting requests), so the async probe runs on its own two threads and
waits at most `timeout` seconds, naming the store that did not answer in time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any

from ..approvals.ledger_records import Ledger
from ..errors import StoreTimeoutError

__all__ = ["HEALTH_TIMEOUT", "HealthProbe"]

HEALTH_TIMEOUT = 2.0


class HealthProbe:
    def __init__(self, ledger: Ledger, store: Any, timeout: float = HEALTH_TIMEOUT) -> None:
        self.timeout = timeout
        self._probes: dict[str, Callable[[], object]] = {
            "ledger": lambda: ledger.get_decision("irgov-health", "sha256:" + "0" * 64),
            "approval_store": lambda: store.get("appr_health"),
        }
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def check(self) -> dict[str, str]:
        """Each probe run here and now: `ok` or `error: Type`; never raises."""
        checks: dict[str, str] = {}
        for name, probe in self._probes.items():
            try:
                probe()
                checks[name] = "ok"
            except StoreTimeoutError as exc:
                checks[name] = f"slow: no answer within {exc.seconds:g} s"
            except Exception as exc:
                checks[name] = f"error: {type(exc).__name__}"
        return checks

    async def acheck(self) -> dict[str, str]:
        """The probes on the probe's own threads, each given `timeout` seconds; never raises."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="irgov-health")
        loop = asyncio.get_running_loop()

        async def run(probe: Callable[[], object]) -> str:
            try:
                await asyncio.wait_for(loop.run_in_executor(self._pool, probe), self.timeout)
            except TimeoutError:
                return f"slow: no answer within {self.timeout:g} s"
            except StoreTimeoutError as exc:  # the store's own, shorter timeout fired first
                return f"slow: no answer within {exc.seconds:g} s"
            except Exception as exc:
                return f"error: {type(exc).__name__}"
            return "ok"

        names = list(self._probes)
        results = await asyncio.gather(*(run(self._probes[n]) for n in names))
        return dict(zip(names, results, strict=True))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
