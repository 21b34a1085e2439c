"""The events as the host's contract writes them: reasons within the contract's four (the finer
cause in `detail`), whole seconds, and no second `ir.validated_escalate` from the gate."""

from __future__ import annotations

import re
from pathlib import Path

from kernel.conftest import embedded
from kernel.flows import ESCALATE_IR, dag_for

from irgov_policy.events import MemorySink
from irgov_policy.events.payloads import payload_problems
from irgov_policy.kernel import Governance

CONTRACT_REASONS = {"token_not_found", "tenant_mismatch", "ir_hash_mismatch", "already_consumed"}
WHOLE_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PAYLOAD_TIMES = ("validated_at", "verified_at", "expires_at", "created_at", "consumed_at", "expired_at",
                 "attempted_at")


def _flow(tmp_path: Path, sink: MemorySink) -> None:
    with Governance.from_config(environ={}, sinks=[sink], **embedded(tmp_path)) as gov:
        decision = gov.validate(ESCALATE_IR, submitted_by="alice")
        request = gov.request_approval(decision, "alice")
        token = str(gov.grant(request.request.request_id, "bob", decision.tenant_id).token)
        assert gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token).allowed
        gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token)  # already consumed
        gov.consume("irgap_" + "x" * 40, tenant_id=decision.tenant_id, ir_hash=decision.ir_hash)
        assert gov.flush()


def test_the_gate_does_not_repeat_the_decision_event(tmp_path: Path) -> None:
    sink = MemorySink("m")
    _flow(tmp_path, sink)
    assert sink.types().count("ir.validated_escalate") == 1
    assert sink.types().count("ir.dag_diff_ok") == 2


def test_payloads_follow_the_contract(tmp_path: Path) -> None:
    sink = MemorySink("m")
    _flow(tmp_path, sink)
    for event in sink.events:
        assert payload_problems(event.type, event.payload) == [], event.type
        for name in PAYLOAD_TIMES:
            if name in event.payload:
                assert WHOLE_SECOND.match(event.payload[name]), (event.type, name, event.payload[name])
    consumed = [e for e in sink.events if e.type == "ir.approval_consumed"]
    assert len(consumed) == 1 and isinstance(consumed[0].payload["time_to_consume_seconds"], int)
    invalid = [e.payload for e in sink.events if e.type == "ir.approval_invalid"]
    assert {p["reason"] for p in invalid} <= CONTRACT_REASONS
    assert {p["detail"] for p in invalid} == {"already_consumed", "token_not_found"}


def test_an_expired_token_is_token_not_found_with_detail_expired(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from irgov_policy.approvals.event_builders import invalid_event
    from irgov_policy.approvals.records import ConsumeReason

    event = invalid_event(tenant_id="t", ir_hash="sha256:" + "0" * 64, reason=ConsumeReason.EXPIRED,
                          attempted_by=None, approval_id="appr_" + "0" * 32, now=datetime.now(UTC))
    assert (event.payload["reason"], event.payload["detail"]) == ("token_not_found", "expired")
    assert payload_problems(event.type, event.payload) == []
