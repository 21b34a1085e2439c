"""IRs as the upstream planner really sends them (Pydantic dumps): naive UTC timestamps, computed
fields sent back, `null` for unset optionals. Accepted as meant, hashed canonically."""

from __future__ import annotations

import json
from typing import Any

import pytest

from irgov_policy.errors import IRInputError
from irgov_policy.hashing import ir_hash
from irgov_policy.model import InputLimits, load_ir, parse_ir
from irgov_policy.policy import PolicyEngine

from .helpers import ir_doc, step

INSTANT_FORMS = ["2026-02-03T08:00:00Z", "2026-02-03T08:00:00+00:00", "2026-02-03T08:00:00",
                 "2026-02-03T09:00:00+01:00", "2026-02-03T08:00:00.000000"]


@pytest.mark.parametrize("form", INSTANT_FORMS)
def test_every_form_of_one_instant_hashes_the_same(form: str) -> None:
    reference = ir_hash(parse_ir(ir_doc(created_at=INSTANT_FORMS[0])))
    ir = parse_ir(ir_doc(created_at=form))
    assert ir.created_at == "2026-02-03T08:00:00Z"
    assert ir_hash(ir) == reference


def test_microseconds_are_kept_in_the_canonical_form() -> None:
    assert parse_ir(ir_doc(created_at="2025-12-28T10:30:00.123456")).created_at == "2025-12-28T10:30:00.123456Z"


def test_a_naive_created_at_is_read_as_utc_and_noted_in_the_decision() -> None:
    ir = parse_ir(ir_doc(created_at="2026-02-03T08:00:00"))
    assert ir.notes == ("`created_at` `2026-02-03T08:00:00` has no offset and was read as utc",)
    decision = PolicyEngine.default().evaluate(ir_doc(created_at="2026-02-03T08:00:00"))
    assert decision.status != "REJECT" or "INVALID_IR" not in decision.violation_codes()
    assert decision.to_dict()["notes"] == list(ir.notes)
    assert parse_ir(ir_doc(created_at="2026-02-03T08:00:00Z")).notes == ()


def test_strict_timestamps_refuses_a_naive_created_at() -> None:
    with pytest.raises(IRInputError, match="no timezone offset"):
        parse_ir(ir_doc(created_at="2026-02-03T08:00:00"), limits=InputLimits(strict_timestamps=True))
    assert parse_ir(ir_doc(created_at="2026-02-03T08:00:00Z"), limits=InputLimits(strict_timestamps=True))


def test_strict_timestamps_is_a_setting_of_the_kernel(tmp_path: Any) -> None:
    from irgov_policy.kernel import Governance

    with Governance.from_config(environ={}, strict_timestamps=True, approval_store="memory://",
                                outbox=f"sqlite:///{tmp_path}/outbox.db") as gov:
        decision = gov.validate(ir_doc(created_at="2026-02-03T08:00:00"))
    assert decision.status == "REJECT" and decision.violation_codes() == ["INVALID_IR"]


@pytest.mark.parametrize("where", ["ir", "step"])
def test_well_formed_computed_fields_are_accepted_and_never_hashed(where: str) -> None:
    plain = ir_doc()
    sent = ir_doc()
    target = sent if where == "ir" else sent["steps"][0]
    target.update(risk_tier=3, requires_approval=True)
    assert ir_hash(parse_ir(sent)) == ir_hash(parse_ir(plain))


@pytest.mark.parametrize("where", ["ir", "step"])
@pytest.mark.parametrize("field, value", [("risk_tier", 5), ("risk_tier", "high"), ("risk_tier", -1),
                                          ("risk_tier", True), ("risk_tier", 2.5),
                                          ("requires_approval", "yes"), ("requires_approval", 1)])
def test_malformed_computed_fields_are_invalid(where: str, field: str, value: Any) -> None:
    doc = ir_doc()
    (doc if where == "ir" else doc["steps"][0])[field] = value
    pointer = f"/{field}" if where == "ir" else f"/steps/0/{field}"
    with pytest.raises(IRInputError) as caught:
        parse_ir(doc)
    assert [p.pointer for p in caught.value.problems] == [pointer]


IR_OPTIONALS = ["request_id", "created_at", "intent_summary", "labels", "risk_tier", "requires_approval"]
STEP_OPTIONALS = ["params", "idempotency_key", "constraints", "budget_cents", "step_id", "description",
                  "risk_tier", "requires_approval"]


def test_null_means_absent_for_every_optional_field() -> None:
    absent = ir_doc(step(idempotency_key="k"))
    for name in ("request_id", "created_at"):
        absent.pop(name)
    absent["steps"][0].pop("params")
    nulls = json.loads(json.dumps(absent))
    nulls.update({k: None for k in IR_OPTIONALS})
    nulls["steps"][0].update({k: None for k in STEP_OPTIONALS if k != "idempotency_key"})
    ir = parse_ir(nulls)
    assert ir_hash(ir) == ir_hash(parse_ir(absent))
    assert ir.request_id is None and ir.steps[0].step_id is None and dict(ir.steps[0].constraints) == {}
    from_bytes = load_ir(json.dumps(nulls).encode())
    assert ir_hash(from_bytes) == ir_hash(ir)


def test_null_for_a_required_field_is_still_invalid() -> None:
    with pytest.raises(IRInputError, match="/steps/0/action"):
        parse_ir(ir_doc(step(action=None)))


@pytest.mark.parametrize("pointer, doc", [
    ("/tenant_id", ir_doc(tenant_id=" ")),
    ("/tenant_id", ir_doc(tenant_id="\u00a0\u2003")),
    ("/steps/0/action", ir_doc(step(action="  "))),
    ("/steps/0/provider", ir_doc(step(provider=" "))),
    ("/steps/0/resource", ir_doc(step(resource="   "))),
])
def test_blank_names_are_invalid(pointer: str, doc: dict[str, Any]) -> None:
    with pytest.raises(IRInputError) as caught:
        parse_ir(doc)
    assert [(p.pointer, p.message) for p in caught.value.problems] == [(pointer, "must not be blank")]


def test_a_rejected_ir_keeps_its_valid_identity() -> None:
    engine = PolicyEngine.default()
    doc = ir_doc(step(action=7), tenant_id="acme", request_id="req-9")
    doc["steps"].append(step())
    for source in (doc, json.dumps(doc).encode(), json.dumps(doc)):
        decision = engine.evaluate(source)
        assert decision.status == "REJECT" and decision.violation_codes() == ["INVALID_IR"]
        assert (decision.tenant_id, decision.request_id, decision.step_count) == ("acme", "req-9", 2)
        payload = decision.event_payload()
        assert (payload["tenant_id"], payload["request_id"], payload["step_count"]) == ("acme", "req-9", 2)


def test_an_invalid_identity_is_not_kept() -> None:
    decision = PolicyEngine.default().evaluate(ir_doc(tenant_id=" ", request_id=""))
    assert (decision.tenant_id, decision.request_id) == ("", None)


def test_an_upstream_style_ir_is_decided_not_rejected() -> None:
    upstream = {
        "tenant_id": "tenant_123", "request_id": "req_77", "created_at": "2025-12-28T10:30:00.123456",
        "intent_summary": None, "labels": None, "risk_tier": 2, "requires_approval": True,
        "steps": [{"step_id": None, "action": "dns.update_records", "provider": "dns.hetzner",
                   "resource": "zone/example.com", "params": {"records": []}, "idempotency_key": "k-1",
                   "constraints": None, "budget_cents": None, "description": None,
                   "risk_tier": 2, "requires_approval": True}],
    }
    decision = PolicyEngine.default().evaluate(json.dumps(upstream).encode())
    assert "INVALID_IR" not in decision.violation_codes()
    assert decision.status in ("PASS", "ESCALATE")
