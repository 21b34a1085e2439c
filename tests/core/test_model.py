from __future__ import annotations

import json
import math

import pytest

from irgov_policy.errors import IRInputError
from irgov_policy.model import InputLimits, load_ir, parse_dag_nodes, parse_ir

from .helpers import ir_doc, step


def _pointers(exc: IRInputError) -> list[str]:
    return [p.pointer for p in exc.problems]


def test_valid_ir_parses_to_frozen_objects() -> None:
    ir = parse_ir(ir_doc(step(step_id="a"), step(idempotency_key="k2")))
    assert ir.tenant_id == "tenant_123"
    assert ir.step_ids() == ["a", "1"]
    with pytest.raises(AttributeError):
        ir.tenant_id = "other"  # type: ignore[misc]


def test_unknown_fields_are_refused_at_every_level() -> None:
    doc = ir_doc(step(colour="red"), extra=1)
    with pytest.raises(IRInputError) as info:
        parse_ir(doc)
    assert sorted(_pointers(info.value)) == ["", "/steps/0"]
    assert "unknown field `colour`" in str(info.value)


def test_every_problem_is_reported_with_its_pointer() -> None:
    doc = ir_doc(step(resource=""), step(action=5), tenant_id="")
    with pytest.raises(IRInputError) as info:
        parse_ir(doc)
    assert set(_pointers(info.value)) == {"/tenant_id", "/steps/0/resource", "/steps/1/action"}


def test_control_character_in_resource_is_refused() -> None:
    with pytest.raises(IRInputError) as info:
        parse_ir(ir_doc(step(resource="zone/\x07bell")))
    assert _pointers(info.value) == ["/steps/0/resource"]


def test_empty_steps_and_missing_tenant_are_refused() -> None:
    with pytest.raises(IRInputError):
        parse_ir({"tenant_id": "t", "steps": []})
    with pytest.raises(IRInputError, match="`tenant_id` is required"):
        parse_ir({"steps": [step()]})


def test_step_count_limit_is_configurable() -> None:
    doc = ir_doc(*[step(idempotency_key=f"k{i}") for i in range(5)])
    with pytest.raises(IRInputError, match="5 steps exceed the limit of 4"):
        parse_ir(doc, limits=InputLimits(max_steps=4))
    assert len(parse_ir(doc, limits=InputLimits(max_steps=5)).steps) == 5


def test_created_at_must_be_iso_8601() -> None:
    with pytest.raises(IRInputError, match="not an iso 8601"):
        parse_ir(ir_doc(created_at="yesterday at noon"))


def test_computed_fields_are_accepted_and_dropped() -> None:
    ir = parse_ir(ir_doc(step(risk_tier=0, requires_approval=False)))
    assert "risk_tier" not in ir.steps[0].to_hashable()
    assert "requires_approval" not in ir.steps[0].to_hashable()


def test_nothing_is_defaulted_to_a_fresh_value() -> None:
    doc = {"tenant_id": "t", "steps": [step()]}
    first, second = parse_ir(doc), parse_ir(doc)
    assert first.request_id is None and first.created_at is None
    assert first.to_hashable() == second.to_hashable()
    assert "request_id" not in first.to_hashable()


def test_policy_judged_fields_parse() -> None:
    # A missing idempotency key or a non-integer budget is a policy violation, not a parse error.
    raw = step(budget_cents=1.5)
    del raw["idempotency_key"]
    ir = parse_ir(ir_doc(raw))
    assert ir.steps[0].idempotency_key is None
    assert ir.steps[0].budget_cents == 1.5


def test_python_values_are_checked_like_json() -> None:
    with pytest.raises(IRInputError) as info:
        parse_ir(ir_doc(step(params={"x": math.nan})))
    assert _pointers(info.value) == ["/steps/0/params/x"]
    with pytest.raises(IRInputError, match="not json"):
        parse_ir(ir_doc(step(params={"x": {1, 2}})))


def test_load_ir_refuses_duplicate_keys_in_steps() -> None:
    text = json.dumps(ir_doc()).replace('"resource": "zone/example.com"',
                                         '"resource": "zone/example.com", "resource": "zone/evil.com"')
    with pytest.raises(IRInputError) as info:
        load_ir(text)
    assert _pointers(info.value) == ["/steps/0/resource"]


def test_dag_document_shapes() -> None:
    nodes = [{"ir_step_id": "0", "ir_step_hash": "sha256:" + "0" * 64}]
    assert parse_dag_nodes(nodes) == nodes
    assert parse_dag_nodes({"nodes": nodes}) == nodes
    with pytest.raises(IRInputError, match="a dag is a list of nodes"):
        parse_dag_nodes({"steps": nodes})


def test_type_errors_speak_json_not_python() -> None:
    with pytest.raises(IRInputError) as info:
        parse_ir({"tenant_id": None, "steps": [step(params="none", action=True)]})
    messages = {p.pointer: p.message for p in info.value.problems}
    assert messages == {
        "/tenant_id": "expected `string`, got `null`",
        "/steps/0/params": "expected `object`, got `string`",
        "/steps/0/action": "expected `string`, got `boolean`",
    }


def test_a_lone_surrogate_in_a_decoded_ir_is_an_input_error() -> None:
    with pytest.raises(IRInputError) as info:
        parse_ir({"tenant_id": "t", "steps": [step(resource="r\ud800", params={"\udc00": 1})]})
    assert sorted((p.pointer, p.message) for p in info.value.problems) == [
        ("/steps/0/params", "object key contains a lone utf-16 surrogate"),
        ("/steps/0/resource", "string contains a lone utf-16 surrogate")]
