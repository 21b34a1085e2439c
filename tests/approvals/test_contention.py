"""Exactly once under contention: one token, 16 contenders released together, every round.

Processes are real OS processes (spawned, each with its own store connection) and persist across
rounds; each round races them on a fresh token. `IRGOV_CONTENTION_ROUNDS` sets the number of
rounds (default 200, the issue's figure)."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.approvals import ApprovalService, KeyRing, open_store

from .conftest import redis_store_url
from .contention_worker import consume_worker
from .helpers import H1

CONTENDERS = 16
ROUNDS = int(os.environ.get("IRGOV_CONTENTION_ROUNDS", "200"))


class ProcessPool:
    """16 persistent worker processes, one task queue each, one shared barrier."""

    def __init__(self, url: str, key: KeyRing) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.barrier = ctx.Barrier(CONTENDERS)
        self.results: Any = ctx.Queue()
        self.queues: list[Any] = [ctx.Queue() for _ in range(CONTENDERS)]
        self.processes = [
            ctx.Process(target=consume_worker, args=(url, key.to_text(), self.barrier, q, self.results), daemon=True)
            for q in self.queues
        ]
        for process in self.processes:
            process.start()

    def race(self, token: str) -> list[tuple[bool, str | None]]:
        for queue in self.queues:
            queue.put((str(token), "acme", H1))
        return [self.results.get(timeout=120) for _ in range(CONTENDERS)]

    def close(self) -> None:
        for queue in self.queues:
            queue.put(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


def run_rounds(service: ApprovalService, race: Any) -> Counter[str | None]:
    reasons: Counter[str | None] = Counter()
    for round_no in range(ROUNDS):
        _, token = service.create("acme", H1, ttl_seconds=600)
        outcomes = race(token)
        winners = [o for o in outcomes if o[0]]
        assert len(winners) == 1, f"round {round_no}: {len(winners)} successes: {outcomes}"
        losers = Counter(reason for ok, reason in outcomes if not ok)
        assert losers == Counter({"already_consumed": CONTENDERS - 1}), f"round {round_no}: {outcomes}"
        reasons.update(reason for _, reason in outcomes)
    return reasons


def _pool_test(url: str) -> ApprovalService:
    key = KeyRing.generate()
    service = ApprovalService(open_store(url), key)
    pool = ProcessPool(url, key)
    try:
        reasons = run_rounds(service, pool.race)
    finally:
        pool.close()
    assert reasons[None] == ROUNDS
    return service


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'contention.db'}"


def test_exactly_once_sqlite_processes(sqlite_url: str) -> None:
    service = _pool_test(sqlite_url)
    path = sqlite_url[len("sqlite:///"):]
    with sqlite3.connect(path) as conn:
        consumed = conn.execute("SELECT COUNT(*) FROM irgov_approvals WHERE status = 'consumed'").fetchone()[0]
        events = conn.execute("SELECT COUNT(*) FROM irgov_outbox WHERE type = 'ir.approval_consumed'").fetchone()[0]
    # one consumed record and one durable event per round: never two, never none
    assert consumed == events == ROUNDS
    service.store.close()


def test_exactly_once_redis_processes(redis_client: Any, redis_url: str, redis_prefix: str) -> None:
    url = redis_store_url(redis_url, redis_prefix)
    service = _pool_test(url)
    assert redis_client.xlen(redis_prefix + "outbox") == ROUNDS
    service.store.close()


def test_exactly_once_postgres_processes(postgres_schema_url: str) -> None:
    service = _pool_test(postgres_schema_url)
    import psycopg

    schema = postgres_schema_url.rsplit("schema=", 1)[1]
    with psycopg.connect(postgres_schema_url.split("?", 1)[0]) as conn:
        consumed = conn.execute(f'SELECT COUNT(*) FROM "{schema}".irgov_approvals WHERE status = %s',
                                ("consumed",)).fetchone()
        events = conn.execute(f'SELECT COUNT(*) FROM "{schema}".irgov_outbox WHERE type = %s',
                              ("ir.approval_consumed",)).fetchone()
    # one consumed record and one durable event per round: never two, never none
    assert consumed is not None and events is not None and consumed[0] == events[0] == ROUNDS
    service.store.close()


def test_exactly_once_memory_threads() -> None:
    service = ApprovalService(open_store("memory://"), KeyRing.generate())
    barrier = threading.Barrier(CONTENDERS)

    def race(token: str) -> list[tuple[bool, str | None]]:
        outcomes: list[tuple[bool, str | None]] = []
        lock = threading.Lock()

        def one() -> None:
            barrier.wait(timeout=30)
            result = service.consume(token, tenant_id="acme", ir_hash=H1)
            with lock:
                outcomes.append((result.success, None if result.reason is None else result.reason.value))

        threads = [threading.Thread(target=one) for _ in range(CONTENDERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return outcomes

    assert run_rounds(service, race)[None] == ROUNDS
