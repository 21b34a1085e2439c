"""Finding: a consume retried after a crash burned the approval. The store committed a consume and
the answer was lost (the server died, the connection dropped); the executor's retry got
`already_consumed` and could not tell the consume was its own. A consume's idempotency key is now
bound to it in the store's own transaction, on every store: a retry with the same key, token and
caller gets the first success again (no second event), and the key reused for anything else is
refused with `IdempotencyConflictError`, never a success."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from irgov_policy.approvals import ApprovalService, ApprovalStatus, ConsumeReason, open_store
from irgov_policy.errors import ApprovalError, IdempotencyConflictError
from irgov_policy.events import MemorySink

from .helpers import H1, H2, Clock, assert_events_valid, make_service

KEY = "job-42/step-0:attempt"


@pytest.fixture
def env(store_url: str) -> Iterator[tuple[ApprovalService, MemorySink, Clock, str]]:
    clock = Clock()
    service, sink, bus = make_service(store_url, clock=clock)
    yield service, sink, clock, store_url
    bus.close()
    service.store.close()


class AnswerLost(Exception):
    """The process died (or the connection dropped) after the store committed the consume."""


class LosesTheAnswer:
    """The store as it is, except that the answer of a successful consume never reaches the caller."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def consume(self, *args: Any, **kwargs: Any) -> Any:
        outcome = self._store.consume(*args, **kwargs)
        if outcome.success:
            raise AnswerLost("committed, then the server died before answering")
        return outcome


def _consumed_events(sink: MemorySink, approval_id: str) -> list[Any]:
    return [e for e in sink.events if e.type == "ir.approval_consumed" and e.payload["approval_id"] == approval_id]


def test_a_retry_after_the_answer_was_lost_gets_the_first_success(
        env: tuple[ApprovalService, MemorySink, Clock, str]) -> None:
    service, sink, _clock, url = env
    approval, token = service.create("acme", H1, created_by="alice")
    crashing = ApprovalService(LosesTheAnswer(service.store), service._key, clock=service._clock)  # type: ignore[arg-type]
    with pytest.raises(AnswerLost):
        crashing.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob", idempotency_key=KEY)
    # The consume committed: the approval is spent, its event is in the store's outbox.
    assert service.get(approval.approval_id, "acme").status is ApprovalStatus.CONSUMED  # type: ignore[union-attr]
    # Without the key, the retry cannot tell the consume was its own (what the attack found).
    blind = service.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob")
    assert blind.reason is ConsumeReason.ALREADY_CONSUMED
    # With it, a new process (a store opened again where it is durable) answers the first success.
    restarted = service if url == "memory://" else ApprovalService(open_store(url), service._key, bus=service.bus,
                                                                   clock=service._clock)
    before = list(sink.events)
    again = restarted.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob", idempotency_key=KEY)
    assert again.to_dict() == {"success": True, "status": "consumed", "reason": None,
                               "approval_id": approval.approval_id}
    assert sink.events == before, "a replay records no event"
    assert restarted.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob",
                             idempotency_key=KEY).to_dict() == again.to_dict()
    if restarted is not service:
        restarted.store.close()


def test_a_replay_records_no_second_event(env: tuple[ApprovalService, MemorySink, Clock, str]) -> None:
    service, sink, _clock, _url = env
    approval, token = service.create("acme", H1)
    first = service.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob", idempotency_key=KEY)
    second = service.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob", idempotency_key=KEY)
    assert first.success and second.to_dict() == first.to_dict()
    assert len(_consumed_events(sink, approval.approval_id)) == 1
    assert "ir.approval_invalid" not in sink.types()
    assert_events_valid(sink)


def test_the_key_reused_for_another_token_caller_or_ir_is_refused(
        env: tuple[ApprovalService, MemorySink, Clock, str]) -> None:
    service, sink, _clock, _url = env
    _first, token = service.create("acme", H1)
    other, other_token = service.create("acme", H1)
    _h2, h2_token = service.create("acme", H2)
    assert service.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob", idempotency_key=KEY).success
    events = len(sink.events)
    with pytest.raises(IdempotencyConflictError, match=f"idempotency key `{KEY}` was used to consume another "
                                                       "approval token"):
        service.consume(other_token, tenant_id="acme", ir_hash=H1, consumed_by="bob", idempotency_key=KEY)
    with pytest.raises(IdempotencyConflictError, match="was used by another caller"):
        service.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="mallory", idempotency_key=KEY)
    with pytest.raises(IdempotencyConflictError, match="was used by another caller"):
        service.consume(token, tenant_id="acme", ir_hash=H1, idempotency_key=KEY)
    with pytest.raises(IdempotencyConflictError, match="was used to consume another approval token"):
        service.consume(h2_token, tenant_id="acme", ir_hash=H2, consumed_by="bob", idempotency_key=KEY)
    assert len(sink.events) == events, "a refused reuse writes nothing"
    # Nothing was consumed by the refusals: the other token is still good, with a key of its own.
    assert service.get(other.approval_id, "acme").status is ApprovalStatus.PENDING  # type: ignore[union-attr]
    assert service.consume(other_token, tenant_id="acme", ir_hash=H1, consumed_by="bob",
                           idempotency_key=KEY + "-2").success


def test_the_same_token_and_key_for_another_ir_hash_is_refused(
        env: tuple[ApprovalService, MemorySink, Clock, str]) -> None:
    service, _sink, _clock, _url = env
    _approval, token = service.create("acme", H1)
    assert service.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob", idempotency_key=KEY).success
    with pytest.raises(IdempotencyConflictError, match="was used for another ir hash"):
        service.consume(token, tenant_id="acme", ir_hash=H2, consumed_by="bob", idempotency_key=KEY)


def test_keys_are_per_tenant(env: tuple[ApprovalService, MemorySink, Clock, str]) -> None:
    service, _sink, _clock, _url = env
    _a, acme_token = service.create("acme", H1)
    _b, umbrella_token = service.create("umbrella", H1)
    assert service.consume(acme_token, tenant_id="acme", ir_hash=H1, idempotency_key=KEY).success
    assert service.consume(umbrella_token, tenant_id="umbrella", ir_hash=H1, idempotency_key=KEY).success
    # Another tenant's token with this tenant's key: not found, as without a key, never a success.
    _c, acme_other = service.create("acme", H1)
    assert service.consume(acme_other, tenant_id="umbrella", ir_hash=H1, idempotency_key="k2").reason is \
        ConsumeReason.TOKEN_NOT_FOUND


def test_a_failed_consume_binds_no_key(env: tuple[ApprovalService, MemorySink, Clock, str]) -> None:
    service, _sink, _clock, _url = env
    _approval, token = service.create("acme", H1)
    refused = service.consume(token, tenant_id="acme", ir_hash=H2, consumed_by="bob", idempotency_key=KEY)
    assert refused.reason is ConsumeReason.IR_HASH_MISMATCH
    assert service.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob", idempotency_key=KEY).success


def test_the_key_is_forgotten_with_its_approval(env: tuple[ApprovalService, MemorySink, Clock, str]) -> None:
    service, _sink, clock, _url = env
    _approval, token = service.create("acme", H1, ttl_seconds=60)
    assert service.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob", idempotency_key=KEY).success
    clock.advance(3600)
    assert service.purge(older_than=timedelta(seconds=60)) == 1
    # Within the retention the key answered for its consume; past it, the key is free again.
    _next, next_token = service.create("acme", H1)
    assert service.consume(next_token, tenant_id="acme", ir_hash=H1, consumed_by="bob", idempotency_key=KEY).success


@pytest.mark.parametrize("bad", ["", "has space", "tab\there", "x" * 201, "irgap_" + "a" * 30, "caf\u00e9", 7])
def test_keys_are_bounded_visible_ascii_and_never_token_shaped(
        env: tuple[ApprovalService, MemorySink, Clock, str], bad: object) -> None:
    service, sink, _clock, _url = env
    approval, token = service.create("acme", H1)
    with pytest.raises(ApprovalError, match="`idempotency_key`") as caught:
        service.consume(token, tenant_id="acme", ir_hash=H1, idempotency_key=bad)  # type: ignore[arg-type]
    assert "irgap_" not in str(caught.value)
    assert service.get(approval.approval_id, "acme").status is ApprovalStatus.PENDING  # type: ignore[union-attr]
    assert sink.types() == ["ir.approval_created"]
