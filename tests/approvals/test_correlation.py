"""`meta.correlation_id` on every approval event: the IR's `request_id` travels from the decision
through the approval request into the approval record of every store (memory, SQLite, Redis,
PostgreSQL), and every event about that approval carries it, the copies durable stores record
in their own outbox included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from irgov_policy.approvals import ApprovalService
from irgov_policy.approvals.ledger_records import ApprovalRequest, DecisionEntry, RequestState, new_request_id
from irgov_policy.events import MemorySink
from irgov_policy.events.envelope import Event
from irgov_policy.events.sources import source_from_url

from .helpers import H1, H2, Clock, assert_events_valid, make_service

NOW_US = 1_767_268_800_000_000  # helpers.START
IR_REQUEST = "req-2026-0042"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def env(store_url: str, clock: Clock) -> Iterator[tuple[ApprovalService, MemorySink]]:
    service, sink, bus = make_service(store_url, clock=clock)
    yield service, sink
    bus.close()
    service.store.close()


def _correlations(sink: MemorySink) -> list[tuple[str, str | None]]:
    return [(e.type, e.meta["correlation_id"]) for e in sink.events]


def _stored(service: ApprovalService) -> list[Event]:
    """The events the store recorded in its own outbox, as the relay's source reads them back."""
    url = service.store.outbox_url
    if url is None:
        return []
    source = source_from_url(url)
    try:
        return source.read(None, 100)[0]
    finally:
        source.close()


def test_a_granted_request_carries_the_decisions_request_id_to_every_event(
        env: tuple[ApprovalService, MemorySink], clock: Clock) -> None:
    service, sink = env
    ledger = service.store.ledger
    ledger.record_decision(DecisionEntry("acme", H1, "ESCALATE", 2, IR_REQUEST, NOW_US), "sam")
    request = ApprovalRequest(new_request_id(), "acme", H1, "alice", 2, NOW_US, correlation_id=IR_REQUEST)
    ledger.insert_request(request)
    stored = ledger.get_request(request.request_id)
    assert stored is not None and stored.correlation_id == IR_REQUEST
    approval, token, granted = service.grant(request, granted_by="bob")
    assert granted.correlation_id == IR_REQUEST and granted.state is RequestState.GRANTED
    record = service.store.get(approval.approval_id)
    assert record is not None and record.correlation_id == IR_REQUEST

    assert service.consume(token, tenant_id="other", ir_hash=H1).reason is not None  # tenant mismatch
    assert service.consume(token, tenant_id="acme", ir_hash=H2).reason is not None  # ir hash mismatch
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    assert not service.consume(token, tenant_id="acme", ir_hash=H1).success  # already consumed
    assert _correlations(sink) == [
        ("ir.approval_created", IR_REQUEST), ("ir.approval_invalid", IR_REQUEST),
        ("ir.approval_invalid", IR_REQUEST), ("ir.approval_consumed", IR_REQUEST),
        ("ir.approval_invalid", IR_REQUEST)]
    assert_events_valid(sink)
    # The durable stores' own copies (created and consumed) carry it too.
    stored_events = _stored(service)
    assert service.store.outbox_url is None or {e.type for e in stored_events} == {
        "ir.approval_created", "ir.approval_consumed"}
    assert {e.correlation_id for e in stored_events} <= {IR_REQUEST}


def test_create_with_a_correlation_id_and_expiry_on_consume_and_by_the_sweeper(
        env: tuple[ApprovalService, MemorySink], clock: Clock) -> None:
    service, sink = env
    _, first = service.create("acme", H1, ttl_seconds=10, correlation_id="req-a")
    approval, _ = service.create("acme", H2, ttl_seconds=10, correlation_id="req-b")
    assert service.store.get(approval.approval_id).correlation_id == "req-b"  # type: ignore[union-attr]
    clock.advance(11)
    assert not service.consume(first, tenant_id="acme", ir_hash=H1).success  # expired now
    assert service.sweep() == 1
    assert _correlations(sink) == [
        ("ir.approval_created", "req-a"), ("ir.approval_created", "req-b"),
        ("ir.approval_expired", "req-a"), ("ir.approval_invalid", "req-a"), ("ir.approval_expired", "req-b")]


def test_a_token_naming_no_approval_is_correlated_by_the_decision_on_its_ir(
        env: tuple[ApprovalService, MemorySink]) -> None:
    service, sink = env
    service.store.ledger.record_decision(DecisionEntry("acme", H1, "ESCALATE", 2, IR_REQUEST, NOW_US), None)
    service.consume("irgap_" + "x" * 40, tenant_id="acme", ir_hash=H1)  # no such approval
    service.consume("irgap_" + "x" * 40, tenant_id="acme", ir_hash=H2)  # nor a decision
    service.consume("irgap_" + "x" * 40, tenant_id="other", ir_hash=H1)  # another tenant's decision: not it
    assert _correlations(sink) == [("ir.approval_invalid", IR_REQUEST), ("ir.approval_invalid", None),
                                   ("ir.approval_invalid", None)]


def test_an_approval_created_without_an_id_has_none(env: tuple[ApprovalService, MemorySink]) -> None:
    """The plain path is told the id or has none: an approval's events never cost a ledger read."""
    service, sink = env
    service.store.ledger.record_decision(DecisionEntry("acme", H1, "ESCALATE", 2, IR_REQUEST, NOW_US), None)
    approval, token = service.create("acme", H1)
    assert service.store.get(approval.approval_id).correlation_id is None  # type: ignore[union-attr]
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    assert _correlations(sink) == [("ir.approval_created", None), ("ir.approval_consumed", None)]
