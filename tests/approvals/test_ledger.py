"""The ledger in the approval store: the same calls give the same answers on memory, SQLite and
Redis, and a grant (request, approval, `ir.approval_created`) commits or fails as one."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.approvals import ApprovalService, ApprovalStatus, KeyRing
from irgov_policy.approvals.ledger_records import (
    ApprovalRequest,
    DecisionEntry,
    RequestState,
    new_request_id,
)
from irgov_policy.errors import ConflictError, NotFoundError, StoreError
from irgov_policy.events import MemorySink
from irgov_policy.events.sources import source_from_url

from .helpers import H1, H2, Clock, make_service

NOW_US = 1_767_268_800_000_000  # helpers.START


@pytest.fixture
def env(store_url: str) -> Iterator[tuple[ApprovalService, MemorySink]]:
    service, sink, bus = make_service(store_url, clock=Clock())
    yield service, sink
    bus.close()
    service.store.close()


def _request(tenant: str = "acme", ir_hash: str = H1, created_us: int = NOW_US) -> ApprovalRequest:
    return ApprovalRequest(new_request_id(), tenant, ir_hash, "alice", 2, created_us)


def _outbox_event_ids(service: ApprovalService) -> list[str]:
    """The event ids the store recorded in its own outbox (none for memory)."""
    url = service.store.outbox_url
    if url is None:
        return []
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(service.store.path)  # type: ignore[attr-defined]
        try:
            return [r[0] for r in conn.execute("SELECT event_id FROM irgov_outbox ORDER BY seq")]
        finally:
            conn.close()
    if url.startswith("postgresql:"):
        source = source_from_url(url)
        try:
            return [e.id for e in source.read(None, 1000)[0]]
        finally:
            source.close()
    store: Any = service.store
    return [fields["event_id"] for _, fields in store._client.xrange(store.outbox_stream)]


def test_decisions_and_submitters(env: tuple[ApprovalService, MemorySink]) -> None:
    ledger = env[0].store.ledger
    entry = DecisionEntry("acme", H1, "ESCALATE", 2, "req-1", NOW_US)
    ledger.record_decision(entry, "sam")
    ledger.record_decision(replace(entry, request_id=None), "tom")
    ledger.record_decision(entry, None)
    assert ledger.get_decision("acme", H1) == entry
    assert ledger.get_decision("other", H1) is None and ledger.get_decision("acme", H2) is None
    assert ledger.submitters("acme", H1) == {"sam", "tom"}
    assert ledger.submitters("other", H1) == set()


def test_a_decision_keeps_its_details_read_only_when_asked_for(env: tuple[ApprovalService, MemorySink]) -> None:
    ledger = env[0].store.ledger
    snapshot = '{"version":1,"steps":[{"params":"<b>\u00e9</b>"}]}' + "x" * 100_000
    entry = DecisionEntry("acme", H1, "ESCALATE", 2, "req-1", NOW_US, 12, "rotate keys \u00e9", snapshot)
    ledger.record_decision(entry, "sam")
    assert ledger.get_decision("acme", H1, with_snapshot=True) == entry
    assert ledger.get_decision("acme", H1) == replace(entry, snapshot=None)
    # A later decision replaces the entry whole: no details of the earlier one stay behind.
    ledger.record_decision(DecisionEntry("acme", H1, "PASS", 0, None, NOW_US + 1, 12), None)
    assert ledger.get_decision("acme", H1, with_snapshot=True) == DecisionEntry("acme", H1, "PASS", 0, None,
                                                                                NOW_US + 1, 12)


def test_requests_transition_forward_only_and_page(env: tuple[ApprovalService, MemorySink]) -> None:
    ledger = env[0].store.ledger
    requests = [_request(created_us=NOW_US + i) for i in range(5)]
    for request in requests:
        ledger.insert_request(request)
    assert ledger.get_request(requests[0].request_id) == requests[0]
    revoked = ledger.transition(requests[1].request_id, tenant_id="acme", from_states=(RequestState.REQUESTED,),
                                changes={"state": RequestState.REVOKED, "revoked_by": "bob", "revoke_reason": None})
    assert revoked is not None and revoked.state is RequestState.REVOKED and revoked.revoked_by == "bob"
    assert ledger.transition(requests[1].request_id, tenant_id="acme", from_states=(RequestState.REQUESTED,),
                             changes={"state": RequestState.GRANTED}) is None
    assert ledger.transition(requests[2].request_id, tenant_id="evil", from_states=(RequestState.REQUESTED,),
                             changes={"state": RequestState.REVOKED}) is None
    with pytest.raises(ValueError, match="cannot change `tenant_id`"):
        ledger.transition(requests[2].request_id, tenant_id="acme", from_states=(RequestState.REQUESTED,),
                          changes={"tenant_id": "evil"})
    page, cursor = ledger.list_requests("acme", state=None, limit=2, cursor=None)
    assert [r.request_id for r in page] == [requests[4].request_id, requests[3].request_id] and cursor
    rest, end = ledger.list_requests("acme", state=RequestState.REQUESTED, limit=10, cursor=cursor)
    assert [r.request_id for r in rest] == [requests[2].request_id, requests[0].request_id] and end is None
    assert ledger.list_requests("other", state=None, limit=10, cursor=None) == ([], None)


def test_grant_is_one_unit(env: tuple[ApprovalService, MemorySink]) -> None:
    service, sink = env
    request = _request()
    service.store.ledger.insert_request(request)
    approval, token, granted = service.grant(request, granted_by="bob", reason="change window")
    assert granted.state is RequestState.GRANTED and granted.approval_id == approval.approval_id
    assert granted.granted_by == "bob" and granted.granted_us is not None
    assert service.store.ledger.get_request(request.request_id) == granted
    stored = service.get(approval.approval_id, "acme")
    assert stored is not None and stored.status is ApprovalStatus.PENDING and stored.created_by == "bob"
    created = [e for e in sink.events if e.type == "ir.approval_created"]
    assert len(created) == 1 and created[0].payload["approval_id"] == approval.approval_id
    if service.store.outbox_url is not None:  # recorded durably in the grant's own transaction
        assert _outbox_event_ids(service) == [created[0].id]
    assert service.consume(str(token), tenant_id="acme", ir_hash=H1).success
    # A second grant of the same request writes nothing at all.
    with pytest.raises(ConflictError, match="was granted or revoked meanwhile"):
        service.grant(granted, granted_by="carol")
    assert service.list("acme").items == [service.get(approval.approval_id, "acme")]
    assert len([e for e in sink.events if e.type == "ir.approval_created"]) == 1


def test_a_grant_refused_by_the_store_leaves_the_request_grantable(
        env: tuple[ApprovalService, MemorySink]) -> None:
    service, _ = env
    request = _request()
    service.store.ledger.insert_request(request)
    other_tenant = replace(request, tenant_id="evil")
    with pytest.raises(ConflictError):
        service.grant(other_tenant, granted_by="bob")
    missing = _request()
    with pytest.raises(ConflictError):
        service.grant(missing, granted_by="bob")
    # An approval that cannot be inserted (its id taken) aborts the whole grant.
    approval, _ = service.create("acme", H1)
    record = service.store.get(approval.approval_id)
    assert record is not None
    event_ids = _outbox_event_ids(service)
    with pytest.raises(StoreError, match="already exists"):
        service.store.grant(request.request_id, tenant_id="acme", granted_by="bob", granted_us=NOW_US,
                            record=record, event=_any_event())
    assert service.store.ledger.get_request(request.request_id) == request
    assert _outbox_event_ids(service) == event_ids
    assert service.list("acme").items == [service.get(approval.approval_id, "acme")]
    _, _, granted = service.grant(request, granted_by="bob")
    assert granted.state is RequestState.GRANTED


def _any_event() -> Any:
    from irgov_policy.events.envelope import new_event
    from irgov_policy.events.types import EventType

    return new_event(EventType.APPROVAL_CREATED, {"approval_id": "appr_x"}, tenant_id="acme")


def test_purge_forgets_old_ledger_rows_but_not_a_pending_approval(
        env: tuple[ApprovalService, MemorySink], store_url: str) -> None:
    service, _ = env
    ledger = service.store.ledger
    ledger.record_decision(DecisionEntry("acme", H1, "ESCALATE", 2, None, NOW_US), "sam")
    old, live = _request(), _request()
    ledger.insert_request(old)
    ledger.insert_request(live)
    service.grant(live, granted_by="bob", ttl_seconds=3600)
    service.store.purge(NOW_US + 10)  # before the approval expires: only the unlinked rows go
    assert ledger.get_request(live.request_id) is not None
    if store_url.startswith("redis"):
        # Redis ledger keys carry their own expiry (test_redis_ledger_keys_expire); purge leaves them.
        assert ledger.get_request(old.request_id) is not None
        return
    assert ledger.get_request(old.request_id) is None and ledger.get_decision("acme", H1) is None
    assert ledger.submitters("acme", H1) == set()


def test_redis_ledger_keys_expire(redis_url: str, redis_prefix: str, redis_client: Any) -> None:
    from .conftest import redis_store_url

    service, _, bus = make_service(redis_store_url(redis_url, redis_prefix) + "&retention=600", clock=Clock())
    try:
        ledger = service.store.ledger
        ledger.record_decision(DecisionEntry("acme", H1, "ESCALATE", 2, None, NOW_US), "sam")
        request = _request()
        ledger.insert_request(request)
        service.grant(request, granted_by="bob", ttl_seconds=7200)
        keys = [k.decode() for k in redis_client.scan_iter(match=f"{redis_prefix}ledger:*")]
        assert len(keys) == 4
        lives = {k.split(":")[3]: redis_client.pttl(k) for k in keys}
        assert all(0 < ms <= 600_000 for name, ms in lives.items() if name != "request")
        # A granted request lives as long as its approval: ttl + retention.
        assert 600_000 < lives["request"] <= 7_800_000
    finally:
        bus.close()
        service.store.close()


def test_the_service_grants_with_the_key_it_consumes_with(store_url: str) -> None:
    key = KeyRing.generate()
    service, _, bus = make_service(store_url, key=key)
    try:
        request = _request()
        service.store.ledger.insert_request(request)
        _, token, _ = service.grant(request, granted_by="bob")
        assert service.consume(str(token), tenant_id="acme", ir_hash=H1).success
    finally:
        bus.close()
        service.store.close()


def test_revoking_a_request_revokes_its_pending_approval_in_the_same_unit(
        env: tuple[ApprovalService, MemorySink]) -> None:
    service, _ = env
    ledger = service.store.ledger
    waiting, granted, consumed = _request(), _request(), _request()
    for request in (waiting, granted, consumed):
        ledger.insert_request(request)
    after, approval = service.revoke_request(waiting, by="bob", reason="not needed")
    assert after.state is RequestState.REVOKED and after.revoked_by == "bob" and approval is None
    assert ledger.get_request(waiting.request_id) == after

    live, _, granted_after = service.grant(granted, granted_by="bob")
    after, approval = service.revoke_request(granted_after, by="carol")
    assert after.state is RequestState.REVOKED and after.revoked_by == "carol"
    assert approval is not None and approval.status is ApprovalStatus.REVOKED
    assert service.get(live.approval_id, "acme").status is ApprovalStatus.REVOKED  # type: ignore[union-attr]
    again, _ = service.revoke_request(after, by="dave")  # already revoked: stays as it was
    assert again == after

    _, token, consumed_after = service.grant(consumed, granted_by="bob")
    assert service.consume(str(token), tenant_id="acme", ir_hash=H1).success
    with pytest.raises(ConflictError, match="its approval is already consumed"):
        service.revoke_request(consumed_after, by="carol")
    assert ledger.get_request(consumed.request_id) == consumed_after  # nothing written
    with pytest.raises(NotFoundError):
        service.revoke_request(replace(waiting, tenant_id="evil"), by="carol")


def test_an_expired_approval_makes_its_request_unrevocable(store_url: str) -> None:
    clock = Clock()
    service, _, bus = make_service(store_url, clock=clock)
    try:
        request = _request()
        service.store.ledger.insert_request(request)
        _, _, granted = service.grant(request, granted_by="bob", ttl_seconds=60)
        clock.advance(61)
        with pytest.raises(ConflictError, match="its approval is already expired"):
            service.revoke_request(granted, by="carol")
        assert service.store.ledger.get_request(request.request_id) == granted
    finally:
        bus.close()
        service.store.close()


def test_a_version_2_ledger_gains_the_decision_details_and_keeps_its_decisions(tmp_path: Path) -> None:
    from irgov_policy.approvals import open_store

    db = tmp_path / "approvals.db"
    open_store(f"sqlite:///{db}").close()
    conn = sqlite3.connect(db)
    with conn:
        for column in ("snapshot", "intent_summary", "step_count"):
            conn.execute(f"ALTER TABLE irgov_decisions DROP COLUMN {column}")
        for column in ("delivery", "sealed_token", "claimed_by", "claimed_us"):
            conn.execute(f"ALTER TABLE irgov_approval_requests DROP COLUMN {column}")
        conn.execute("UPDATE irgov_schema_version SET version = 2 WHERE component = 'ledger'")
        conn.execute("DELETE FROM irgov_schema_history WHERE component = 'ledger' AND version > 2")
        conn.execute("INSERT INTO irgov_decisions VALUES ('acme', ?, 'ESCALATE', 2, NULL, 5)", (H1,))
    conn.close()
    store = open_store(f"sqlite:///{db}")
    try:
        assert store.ledger.get_decision("acme", H1, with_snapshot=True) == DecisionEntry("acme", H1, "ESCALATE", 2,
                                                                                          None, 5)
        store.ledger.record_decision(DecisionEntry("acme", H2, "ESCALATE", 2, None, 6, 1, "x", "{}"), None)
        assert store.ledger.get_decision("acme", H2, with_snapshot=True).snapshot == "{}"
    finally:
        store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version FROM irgov_schema_version WHERE component = 'ledger'").fetchone() == (4,)
    conn.close()
