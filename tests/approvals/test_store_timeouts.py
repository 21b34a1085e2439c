"""Finding (store part): a store call waits at most `store_timeout`, then raises `StoreTimeoutError`
naming the store and its backend, and writes nothing. Each backend is stalled its own way: SQLite
write-locked by another connection, PostgreSQL with the table locked by another transaction (Redis
under `CLIENT PAUSE` is in tests/http_api/test_stalled_store.py, on a server of its own).

The time bounds prove liveness (an answer, not a hang): ten times the configured timeout."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from irgov_policy.approvals import ApprovalService, ApprovalStatus, KeyRing, open_store
from irgov_policy.errors import StoreError, StoreTimeoutError

from .helpers import H1

TIMEOUT = 0.5
LIVENESS = 10 * TIMEOUT


def _consume_while(service: ApprovalService, token: str) -> tuple[StoreTimeoutError, float]:
    started = time.monotonic()
    with pytest.raises(StoreTimeoutError) as caught:
        service.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob")
    return caught.value, time.monotonic() - started


def test_a_write_locked_sqlite_store_times_out_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "approvals.db"
    service = ApprovalService(open_store(f"sqlite:///{path}", timeout=TIMEOUT), KeyRing.generate())
    approval, token = service.create("acme", H1)
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        error, took = _consume_while(service, token)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert (error.store, error.backend, error.seconds) == ("approval store", "sqlite", TIMEOUT)
    assert str(error) == "the approval store (sqlite) did not answer within 0.5 s: cannot begin a transaction"
    assert str(path) not in str(error)
    assert took < LIVENESS
    assert service.get(approval.approval_id, "acme").status is ApprovalStatus.PENDING  # type: ignore[union-attr]
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    service.store.close()


@pytest.mark.postgres
def test_a_locked_postgresql_table_times_out_and_writes_nothing(postgres_schema_url: str) -> None:
    import psycopg

    service = ApprovalService(open_store(postgres_schema_url, timeout=TIMEOUT), KeyRing.generate())
    approval, token = service.create("acme", H1)
    schema = postgres_schema_url.rsplit("schema=", 1)[1]
    with psycopg.connect(postgres_schema_url.split("?")[0]) as lock:
        lock.execute(f'LOCK TABLE "{schema}".irgov_approvals IN ACCESS EXCLUSIVE MODE')
        error, took = _consume_while(service, token)
        lock.rollback()
    assert (error.store, error.backend, error.seconds) == ("approval store", "postgresql", TIMEOUT)
    assert took < LIVENESS
    assert service.get(approval.approval_id, "acme").status is ApprovalStatus.PENDING  # type: ignore[union-attr]
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    service.store.close()


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "2"])
def test_a_timeout_must_be_a_positive_number(tmp_path: Path, bad: object) -> None:
    with pytest.raises(StoreError, match="timeout must be a positive number of seconds"):
        open_store(f"sqlite:///{tmp_path / 'a.db'}", timeout=bad)  # type: ignore[arg-type]
