"""Start-up repair: what the previous layout (ledger in its own file, grant in two writes) could
leave half-done is put right and logged, on SQLite (with the old ledger file imported) and Redis."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.approvals import ApprovalStatus, KeyRing
from irgov_policy.approvals.ledger_records import ApprovalRequest, DecisionEntry, RequestState, new_request_id
from irgov_policy.approvals.ledger_sqlite import LEDGER_SCHEMA, ORPHAN_REASON
from irgov_policy.kernel import Governance

from .conftest import redis_store_url
from .helpers import H1, H2, Clock, make_service


def _half_done(service: Any, *, linked: bool) -> tuple[ApprovalRequest, str, str]:
    """A request granted with no approval linked, plus the approval its grant created (the
    orphan) and an unrelated pending approval of the same tenant."""
    orphan, _ = service.create("acme", H1, created_by="bob")
    unrelated, _ = service.create("acme", H2, created_by="bob")
    granted_us = service.store.get(orphan.approval_id).created_us - 1000
    request = ApprovalRequest(new_request_id(), "acme", H1, "alice", 2, granted_us - 5000,
                              state=RequestState.GRANTED, granted_by="bob", granted_us=granted_us,
                              approval_id=orphan.approval_id if linked else None)
    return request, orphan.approval_id, unrelated.approval_id


def test_sqlite_imports_the_old_ledger_file_and_repairs_it(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "approvals.db"
    service, _, bus = make_service(f"sqlite:///{db}", clock=Clock())
    half, orphan_id, unrelated_id = _half_done(service, linked=False)
    waiting = ApprovalRequest(new_request_id(), "acme", H2, "alice", 2, half.created_us)
    # The previous layout: the ledger in `approvals.ledger.db` beside the store.
    old = sqlite3.connect(tmp_path / "approvals.ledger.db")
    old.executescript(LEDGER_SCHEMA)
    # the previous layout's columns: the fields before the schema gained `correlation_id` and claims
    later = {"correlation_id", "delivery", "sealed_token", "claimed_by", "claimed_us"}
    fields = [f for f in ApprovalRequest.__dataclass_fields__ if f not in later]
    for request in (half, waiting):
        values = [getattr(request, f) for f in fields]
        values[fields.index("state")] = request.state.value
        old.execute(f"INSERT INTO irgov_approval_requests VALUES ({', '.join('?' for _ in fields)})", values)
    old.execute("INSERT INTO irgov_decisions VALUES ('acme', ?, 'ESCALATE', 2, NULL, 1)", (H1,))
    old.execute("INSERT INTO irgov_submitters VALUES ('acme', ?, 'sam')", (H1,))
    old.commit()
    old.close()

    with caplog.at_level(logging.WARNING):
        assert service.store.repair() == 1
    ledger = service.store.ledger
    after = ledger.get_request(half.request_id)
    assert after is not None and after.state is RequestState.REQUESTED and after.granted_by is None
    assert ledger.get_request(waiting.request_id) == waiting
    assert ledger.get_decision("acme", H1) == DecisionEntry("acme", H1, "ESCALATE", 2, None, 1)
    assert ledger.submitters("acme", H1) == {"sam"}
    orphan = service.store.get(orphan_id)
    assert orphan is not None and orphan.status is ApprovalStatus.REVOKED and orphan.revoke_reason == ORPHAN_REASON
    assert service.store.get(unrelated_id).status is ApprovalStatus.PENDING  # type: ignore[union-attr]
    assert not (tmp_path / "approvals.ledger.db").exists()
    assert (tmp_path / "approvals.ledger.db.imported").exists()
    assert half.request_id in caplog.text and "imported" in caplog.text
    assert service.store.repair() == 0  # nothing left to do, and no file to import again
    bus.close()
    service.store.close()


def test_the_kernel_repairs_at_start_up_and_the_request_can_be_granted(tmp_path: Path) -> None:
    db = tmp_path / "approvals.db"
    key = KeyRing.generate("k1")
    service, _, bus = make_service(f"sqlite:///{db}", key=key)
    half, orphan_id, _ = _half_done(service, linked=False)
    service.store.ledger.insert_request(half)
    service.store.ledger.record_decision(DecisionEntry("acme", H1, "ESCALATE", 2, None, half.created_us), None)
    bus.close()
    service.store.close()
    with Governance.from_config(environ={}, approval_store=f"sqlite:///{db}", approval_key=key.to_text(),
                                outbox="memory:") as gov:
        assert gov.get_request(half.request_id, "acme").status == "requested"
        grant = gov.grant(half.request_id, "bob", "acme")
        assert grant.request.status == "pending"
        assert gov.approvals.store.get(orphan_id).status is ApprovalStatus.REVOKED  # type: ignore[union-attr]


def test_a_linked_grant_is_left_alone(tmp_path: Path) -> None:
    service, _, bus = make_service(f"sqlite:///{tmp_path / 'approvals.db'}", clock=Clock())
    linked, approval_id, _ = _half_done(service, linked=True)
    service.store.ledger.insert_request(linked)
    assert service.store.repair() == 0
    assert service.store.ledger.get_request(linked.request_id) == linked
    assert service.store.get(approval_id).status is ApprovalStatus.PENDING  # type: ignore[union-attr]
    bus.close()
    service.store.close()


def test_redis_repairs_once(redis_url: str, redis_prefix: str, redis_client: Any,
                            caplog: pytest.LogCaptureFixture) -> None:
    # The real clock: the repair revokes with it, and only a live approval can be revoked.
    service, _, bus = make_service(redis_store_url(redis_url, redis_prefix))
    try:
        half, orphan_id, unrelated_id = _half_done(service, linked=False)
        ledger = service.store.ledger
        ledger.insert_request(replace(half, state=RequestState.REQUESTED, granted_by=None, granted_us=None))
        assert ledger.transition(half.request_id, tenant_id="acme", from_states=(RequestState.REQUESTED,),
                                 changes={"state": RequestState.GRANTED, "granted_by": "bob",
                                          "granted_us": half.granted_us}) is not None
        with caplog.at_level(logging.WARNING):
            assert service.store.repair() == 1
        after = ledger.get_request(half.request_id)
        assert after is not None and after.state is RequestState.REQUESTED and after.granted_by is None
        orphan = service.store.get(orphan_id)
        assert orphan is not None and orphan.status is ApprovalStatus.REVOKED
        assert orphan.revoke_reason == ORPHAN_REASON
        assert service.store.get(unrelated_id).status is ApprovalStatus.PENDING  # type: ignore[union-attr]
        assert half.request_id in caplog.text
        assert redis_client.get(f"{redis_prefix}ledger:layout") == b"2"
        # Marked: later start-ups do not scan again.
        ledger.transition(half.request_id, tenant_id="acme", from_states=(RequestState.REQUESTED,),
                          changes={"state": RequestState.GRANTED, "granted_by": "bob"})
        assert service.store.repair() == 0
    finally:
        bus.close()
        service.store.close()
