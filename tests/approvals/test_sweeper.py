"""The sweeper keeps a store bounded on its own: expiries are recorded, finished approvals are
purged after the retention, in a thread or as an asyncio task, and a failing round is survived."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import pytest

from irgov_policy.approvals import (
    ApprovalService,
    ApprovalSweeper,
    KeyRing,
    MemoryApprovalStore,
    run_sweeper,
    sweep_once,
)
from irgov_policy.approvals.records import ApprovalRecord
from irgov_policy.errors import ConfigError, StoreError
from irgov_policy.events import EventBus, MemorySink

from .helpers import H1, Clock


def _wait_for(predicate: Callable[[], bool], limit: float = 10.0) -> bool:
    """Polls until `predicate` holds (a bound on waiting, not an assertion on time)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class _FailingOnce(MemoryApprovalStore):
    def __init__(self) -> None:
        super().__init__(max_records=2)
        self.failed = threading.Event()

    def expire_due(self, now_us: int, limit: int) -> list[ApprovalRecord]:
        if not self.failed.is_set():
            self.failed.set()
            raise StoreError("store is briefly unavailable")
        return super().expire_due(now_us, limit)


def _full_service(store: MemoryApprovalStore) -> tuple[ApprovalService, Clock, MemorySink]:
    clock = Clock()
    sink = MemorySink()
    service = ApprovalService(store, KeyRing.generate(), clock=clock, retention_seconds=60,
                              bus=EventBus([sink], observers=False))
    for _ in range(store.max_records):
        service.create("acme", H1, ttl_seconds=10)
    with pytest.raises(StoreError, match="full"):
        service.create("acme", H1)
    clock.advance(100)  # expired at +10 s: finished 90 s ago, past the 60 s retention
    return service, clock, sink


def test_the_sweeper_thread_frees_a_full_memory_store_and_survives_a_failing_round(
        caplog: pytest.LogCaptureFixture) -> None:
    store = _FailingOnce()
    service, _, sink = _full_service(store)
    with caplog.at_level(logging.WARNING, logger="irgov_policy.approvals"), ApprovalSweeper(service, 0.01) as sweeper:
        assert _wait_for(lambda: len(store) == 0)
        assert sweeper.rounds >= 2
    assert store.failed.is_set()
    assert any("approval sweep failed" in r.getMessage() for r in caplog.records)
    assert len(sink.of_type("ir.approval_expired")) == 2  # recorded before being purged
    service.create("acme", H1)  # room again


def test_the_asyncio_sweeper_frees_a_full_memory_store() -> None:
    store = MemoryApprovalStore(max_records=3)
    service, _, sink = _full_service(store)

    async def scenario() -> None:
        task = asyncio.create_task(run_sweeper(service, interval=0.01))
        deadline = time.monotonic() + 10
        while len(store) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert len(store) == 0 and len(sink.of_type("ir.approval_expired")) == 3


def test_sweep_once_reports_what_it_did() -> None:
    store = MemoryApprovalStore(max_records=2)
    service, _, _ = _full_service(store)
    assert sweep_once(service) == (2, 2)
    assert sweep_once(service) == (0, 0)


@pytest.mark.parametrize("interval", [0, -1, float("nan"), float("inf"), True, "60"])
def test_bad_intervals_are_refused(interval: object) -> None:
    service = ApprovalService(MemoryApprovalStore(), KeyRing.generate())
    with pytest.raises(ConfigError, match="sweeper interval"):
        ApprovalSweeper(service, interval)  # type: ignore[arg-type]
