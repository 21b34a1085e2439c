"""Finding: a consume retried after a crash burned the approval. The store committed a consume and
the answer was lost (the server died, the connection dropped); the executor's retry got
`already_consumed` and could not tell the consume was its own. A consume's idempotency key is now
bound to it in the store's own transaction, on every store: a retry with the same key, token and
caller gets the first success again (no second event), and the key reused for anything else is
refused with `IdempotencyConflictError`, never a success."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from kernel.flows import ESCALATE_IR, PASS_IR, dag_for

from irgov_policy.approvals import ApprovalService, ApprovalStatus, ConsumeReason, KeyRing, open_store
from irgov_policy.errors import ApprovalError, IdempotencyConflictError
from irgov_policy.events import MemorySink
from irgov_policy.kernel import Governance

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


# -- the execution gate: a retry of `authorize_execution` with its key is the first answer again ----


class GateEnv:
    """Kernels on one store: `open()` is a new process on the same state (a restart) where the
    store is durable, the same kernel for memory; every event any of them published is kept."""

    def __init__(self, store_url: str) -> None:
        self.sink = MemorySink()
        self.settings: dict[str, Any] = {"environ": {}, "approval_store": store_url, "outbox": "memory:",
                                         "approval_key": KeyRing.generate("k1").to_text(), "sinks": [self.sink]}
        self.first = Governance.from_config(**self.settings)
        self.kernels = [self.first]

    def open(self) -> Governance:
        if self.settings["approval_store"].startswith("memory:"):
            return self.first
        kernel = Governance.from_config(**self.settings)
        self.kernels.append(kernel)
        return kernel

    def granted_token(self, doc: dict[str, Any]) -> str:
        decision = self.first.validate(doc, submitted_by="sam")
        request_id = self.first.request_approval(decision, "rita").request.request_id
        return str(self.first.grant(request_id, "bob", "t1").token)

    def events(self, event_type: str | None = None) -> list[str]:
        """Distinct event ids published so far (delivery is at-least-once: ids, not deliveries)."""
        for kernel in self.kernels:
            kernel.flush()
        return sorted({e.id for e in self.sink.events if event_type is None or e.type == event_type})

    def close(self) -> None:
        for kernel in self.kernels:
            kernel.close()


@pytest.fixture
def gate(store_url: str) -> Iterator[GateEnv]:
    env = GateEnv(store_url)
    yield env
    env.close()


class GarblesTheAnswer:
    """The store as it is, except that the gate answer it kept reads back damaged."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def bound_consume(self, tenant_id: str, idempotency_key: str) -> Any:
        bound = self._store.bound_consume(tenant_id, idempotency_key)
        return None if bound is None else (bound[0], None if bound[1] is None else bound[1][:-7])


def _canonical(clearance: Any) -> bytes:
    return json.dumps(clearance.to_dict()).encode()


def test_a_gate_retry_replays_the_first_answer_byte_for_byte_with_no_event(gate: GateEnv) -> None:
    token = gate.granted_token(ESCALATE_IR)
    first = gate.first.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                           idempotency_key=KEY)
    assert first.allowed and first.approval is not None and first.approval.success, first.reasons
    published = gate.events()
    assert len(gate.events("ir.dag_diff_ok")) == 1
    retried = gate.open()
    again = retried.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                        idempotency_key=KEY)
    assert _canonical(again) == _canonical(first), "the same answer, checked_at included"
    assert again.checked_at == first.checked_at and again.allowed and again.approval == first.approval
    third = retried.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                        idempotency_key=KEY)
    assert _canonical(third) == _canonical(first)
    assert gate.events() == published, "a replay publishes no event of any kind"
    assert len(gate.events("ir.dag_diff_ok")) == 1 and len(gate.events("ir.approval_consumed")) == 1


def test_a_gate_whose_answer_was_lost_is_answered_by_its_record(gate: GateEnv) -> None:
    token = gate.granted_token(ESCALATE_IR)
    real = gate.first.approvals.store
    gate.first.approvals.store = LosesTheAnswer(real)  # type: ignore[assignment]
    lost = gate.first.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                          idempotency_key=KEY)
    assert not lost.allowed, "the caller never saw a success"
    gate.first.approvals.store = real  # type: ignore[assignment]
    published = gate.events()  # `ir.approval_consumed` is in a durable store's outbox, not in memory's
    again = gate.open().authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                            idempotency_key=KEY)
    assert again.allowed and again.reasons == () and again.approval is not None and again.approval.success
    recorded = again.to_dict()
    assert recorded["audit"]["success"] is True and recorded["decision"]["status"] == "ESCALATE"
    assert again.checked_at < lost.checked_at, "the answer built before the commit, not a new one"
    assert gate.events() == published and len(gate.events("ir.dag_diff_ok")) == 1


def test_the_gate_key_reused_for_another_dag_caller_or_token_is_refused(gate: GateEnv) -> None:
    token = gate.granted_token(ESCALATE_IR)
    other_token = gate.granted_token(ESCALATE_IR)
    assert gate.first.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                          idempotency_key=KEY).allowed
    published = gate.events()
    kernel = gate.open()
    other_dag = {"nodes": dag_for(ESCALATE_IR)}  # the same nodes, another body: not this request
    with pytest.raises(IdempotencyConflictError, match=f"idempotency key `{KEY}` was used for another dag"):
        kernel.authorize_execution(ESCALATE_IR, other_dag, token, executed_by="sam", idempotency_key=KEY)
    with pytest.raises(IdempotencyConflictError, match="was used by another caller"):
        kernel.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="mallory",
                                   idempotency_key=KEY)
    with pytest.raises(IdempotencyConflictError, match="was used to consume another approval token"):
        kernel.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), other_token, executed_by="sam",
                                   idempotency_key=KEY)
    assert gate.events() == published, "a refused reuse judges nothing and publishes nothing"
    assert kernel.approvals.get(kernel.approvals.store.find_by_digests(  # still pending: nothing consumed
        [d for _, d in kernel.approvals._keyring().candidate_digests(other_token)]).approval_id,  # type: ignore[union-attr]
        "t1").status is ApprovalStatus.PENDING  # type: ignore[union-attr]


def test_a_failed_gate_attempt_never_turns_into_a_success_on_retry(gate: GateEnv) -> None:
    token = gate.granted_token(ESCALATE_IR)
    tampered = dag_for(ESCALATE_IR)
    tampered[0]["ir_step_hash"] = dag_for(PASS_IR)[0]["ir_step_hash"]
    for kernel in (gate.first, gate.open()):
        refused = kernel.authorize_execution(ESCALATE_IR, tampered, token, executed_by="sam", idempotency_key=KEY)
        assert not refused.allowed and refused.approval is None
        assert "the approval token was not consumed because the execution is refused" in refused.reasons
    assert gate.events("ir.approval_consumed") == []
    # A refused consume (the token spent under another key) stays refused under its own key.
    assert gate.first.consume(token, tenant_id="t1", ir_hash=gate.first.validate(ESCALATE_IR).ir_hash,
                              consumed_by="sam", idempotency_key="direct-1").success
    for kernel in (gate.first, gate.open()):
        spent = kernel.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                           idempotency_key=KEY)
        assert not spent.allowed and spent.reasons == ("the approval token was refused: `already_consumed`",)


def test_a_key_bound_by_a_direct_consume_is_judged_again_at_the_gate(gate: GateEnv) -> None:
    token = gate.granted_token(ESCALATE_IR)
    digest = gate.first.validate(ESCALATE_IR).ir_hash
    assert gate.first.consume(token, tenant_id="t1", ir_hash=digest, consumed_by="sam", idempotency_key=KEY).success
    # No gate answer was recorded with that consume: the decision and the audit run (and are
    # published) as a first judgement, and the consume replays.
    cleared = gate.open().authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                              idempotency_key=KEY)
    assert cleared.allowed and cleared.recorded is None and cleared.audit is not None
    assert len(gate.events("ir.dag_diff_ok")) == 1 and len(gate.events("ir.approval_consumed")) == 1
    tampered = dag_for(ESCALATE_IR)
    tampered[0]["ir_step_hash"] = dag_for(PASS_IR)[0]["ir_step_hash"]
    refused = gate.first.authorize_execution(ESCALATE_IR, tampered, token, executed_by="sam", idempotency_key=KEY)
    assert not refused.allowed, "nothing is allowed that this call did not audit"


def test_a_gate_answer_that_cannot_be_read_is_a_refusal(gate: GateEnv) -> None:
    token = gate.granted_token(ESCALATE_IR)
    assert gate.first.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                          idempotency_key=KEY).allowed
    published = gate.events()
    kernel = gate.open()
    kernel.approvals.store = GarblesTheAnswer(kernel.approvals.store)  # type: ignore[assignment]
    refused = kernel.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                         idempotency_key=KEY)
    assert not refused.allowed
    assert refused.reasons == (f"authorization failed: idempotency key `{KEY}` is bound to a consume whose "
                               "recorded answer cannot be read: the approval is spent; ask for a new approval",)
    assert gate.events() == published


class RacedByATwin:
    """The store as it is, except that just before this consume, a twin attempt with the same key
    (another kernel: another worker or host) runs the whole gate and commits first."""

    def __init__(self, store: Any, twin: Any) -> None:
        self._store, self._twin, self.twin_answer = store, twin, None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def consume(self, *args: Any, **kwargs: Any) -> Any:
        if self._twin is not None:
            twin, self._twin = self._twin, None
            self.twin_answer = twin()
        return self._store.consume(*args, **kwargs)


def test_two_racing_attempts_with_one_key_get_the_one_recorded_answer(gate: GateEnv) -> None:
    token = gate.granted_token(ESCALATE_IR)
    other = gate.open()

    def twin() -> Any:
        return other.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                         idempotency_key=KEY)

    raced = RacedByATwin(gate.first.approvals.store, twin)
    gate.first.approvals.store = raced  # type: ignore[assignment]
    mine = gate.first.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="sam",
                                          idempotency_key=KEY)
    assert raced.twin_answer is not None and raced.twin_answer.allowed
    assert mine.allowed and _canonical(mine) == _canonical(raced.twin_answer), "the twin's answer, recorded first"
    assert len(gate.events("ir.approval_consumed")) == 1
