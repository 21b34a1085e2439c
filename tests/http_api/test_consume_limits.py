"""Finding: no rate limit on failed consumes. Each failed consume writes a critical, fsync'd
event, so a client could flood the outbox. Failed consumes (invalid tokens included) are now
limited per tenant and per principal (`consume_failure_limit` per `consume_failure_window`):
past the limit a consume, direct or through the gate, is a 429 problem, nothing is written, and
reaching the limit is published once per window as `ir.consume_rate_limited`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kernel.flows import ESCALATE_IR, dag_for

from irgov_policy.approvals.limits import FailureLimiter
from irgov_policy.errors import RateLimitedError
from irgov_policy.http import create_app
from irgov_policy.kernel import Governance

from .conftest import bearer, settings

LIMIT = 4
HASH = "sha256:" + "0" * 64


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[TestClient, Governance, Path]]:
    gov = Governance.from_config(environ={}, **settings(tmp_path, consume_failure_limit=LIMIT,
                                                        consume_failure_window=3600))
    with TestClient(create_app(governance=gov)) as client:
        yield client, gov, tmp_path / "state"
    gov.close()


def _events(state: Path, event_type: str) -> list[str]:
    ids: set[str] = set()
    for name in ("approvals.db", "outbox.db"):
        with sqlite3.connect(state / name) as conn:
            ids |= {r[0] for r in conn.execute("SELECT event_id FROM irgov_outbox WHERE type = ?", (event_type,))}
    return sorted(ids)


def _consume(client: TestClient, who: str, tenant: str = "t1") -> int:
    body = {"tenant_id": tenant, "ir_hash": HASH, "token": "irgap_" + "x" * 10}
    return client.post("/approvals/consume", json=body, headers=bearer(who)).status_code


def test_failed_consumes_past_the_limit_are_429_and_write_nothing(limited: tuple[TestClient, Governance, Path]) -> None:
    client, gov, state = limited
    assert [_consume(client, "alice") for _ in range(LIMIT)] == [200] * LIMIT
    refused = client.post("/approvals/consume", json={"tenant_id": "t1", "ir_hash": HASH, "token": "guess"},
                          headers=bearer("alice"))
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/rate-limited") and int(refused.headers["retry-after"]) > 0
    # the gate is limited too, and another principal of the tenant is held by the tenant's limit
    gate = client.post("/authorize", json={"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR), "approval_token": "x"},
                       headers=bearer("alice"))
    assert gate.status_code == 429, gate.text
    assert _consume(client, "root") == 429
    assert _consume(client, "eve", "t2") == 200  # another tenant, another principal
    for _ in range(10):
        assert _consume(client, "alice") == 429
    gov.bus.flush(5)
    assert len(_events(state, "ir.approval_invalid")) == LIMIT + 1
    reached = _events(state, "ir.consume_rate_limited")
    assert len(reached) == 2  # tenant `t1` and principal `alice`, once each in this window


def test_a_principal_is_limited_across_tenants(limited: tuple[TestClient, Governance, Path]) -> None:
    client, _, _ = limited
    assert [_consume(client, "root", f"tenant-{i}") for i in range(LIMIT)] == [200] * LIMIT
    assert _consume(client, "root", "tenant-new") == 429


def test_the_limit_ends_with_its_window_and_is_reported_once_per_window() -> None:
    now = [0.0]
    limiter = FailureLimiter(2, 10.0, clock=lambda: now[0])
    hits = [limiter.record_failure("t", "p") for _ in range(3)]
    assert [len(h) for h in hits] == [0, 2, 0]
    with pytest.raises(RateLimitedError, match=r"too many failed consumes for tenant `t`: 3 in 10 s; retry in 10 s"):
        limiter.check("t", "p")
    now[0] = 10.0
    limiter.check("t", "p")
    assert [len(limiter.record_failure("t", None)) for _ in range(2)] == [0, 1]
