"""The compiled IR validator (jsonschema-rs, the hot path) and the explaining one (jsonschema)
give the same verdict on the same IRs, valid and invalid, generated and hand-picked; `parse_ir`
refuses exactly what the explaining validator refuses, with its messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irgov_policy.errors import IRInputError
from irgov_policy.model import _compiled_ir_validator, _ir_validator, parse_ir

compiled = _compiled_ir_validator()
pytestmark = pytest.mark.skipif(compiled is None, reason="jsonschema-rs is not installed")


def verdicts(data: Any) -> tuple[bool, bool]:
    assert compiled is not None
    return compiled(data), not any(True for _ in _ir_validator().iter_errors(data))


texts = st.one_of(st.text(max_size=8), st.sampled_from(["", "a\n", "\n", "x\x00y", "\x7f", "ok", "\u00e9t\u00e9",
                                                         "\U0001f600", "a" * 101, "b" * 201, "c" * 501]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), texts)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(texts, inner, max_size=3)),
                           max_leaves=8)
# Each field either well-typed or anything at all, so that every keyword of the schema is hit.
maybe_text = st.one_of(texts, json_values)
steps = st.one_of(
    st.fixed_dictionaries(
        {"action": maybe_text, "provider": maybe_text, "resource": maybe_text},
        optional={"params": st.one_of(st.dictionaries(texts, json_values, max_size=3), json_values),
                  "constraints": st.one_of(st.dictionaries(texts, json_values, max_size=3), json_values),
                  "idempotency_key": st.one_of(st.none(), maybe_text), "budget_cents": json_values,
                  "step_id": maybe_text, "description": maybe_text, "risk_tier": json_values,
                  "requires_approval": json_values, "extra": json_values}),
    json_values,
)
irs = st.one_of(
    st.fixed_dictionaries(
        {"tenant_id": maybe_text, "steps": st.one_of(st.lists(steps, max_size=3), json_values)},
        optional={"request_id": maybe_text, "created_at": maybe_text, "intent_summary": maybe_text,
                  "labels": st.one_of(st.dictionaries(texts, texts, max_size=2), json_values),
                  "unknown": json_values}),
    json_values,
)

VALID = {"tenant_id": "t", "request_id": "r", "created_at": "2026-11-27T10:00:00Z", "intent_summary": "",
         "labels": {"team": "ops"},
         "steps": [{"action": "a.b", "provider": "p.q", "resource": "r", "params": {"k": [1, 2.5, None]},
                    "idempotency_key": None, "constraints": {}, "budget_cents": "anything", "step_id": "s",
                    "description": "", "risk_tier": 2, "requires_approval": True}]}


def _with(path: list[str | int], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


MUTATIONS: list[tuple[list[str | int], Any]] = [
    (["tenant_id"], ""), (["tenant_id"], "a" * 101), (["tenant_id"], "t\n"), (["tenant_id"], None),
    (["request_id"], ""), (["created_at"], "2026"), (["intent_summary"], "x" * 2001), (["labels"], {"k": 1}),
    (["steps"], []), (["steps"], {}), (["steps", 0], "step"), (["steps", 0, "action"], ""),
    (["steps", 0, "provider"], "p" * 201), (["steps", 0, "resource"], "x\x1f"), (["steps", 0, "resource"], "x\n"),
    (["steps", 0, "params"], []), (["steps", 0, "idempotency_key"], 5), (["steps", 0, "constraints"], []),
    (["steps", 0, "risk_tier"], 9), (["steps", 0, "risk_tier"], "high"), (["steps", 0, "requires_approval"], "x"),
    (["risk_tier"], 4), (["requires_approval"], 0),
    (["steps", 0, "step_id"], ""), (["steps", 0, "description"], "d" * 1001), (["steps", 0, "surprise"], 1),
    (["surprise"], True),
]


def test_the_valid_ir_is_valid_for_both() -> None:
    assert verdicts(VALID) == (True, True)


@pytest.mark.parametrize(("path", "value"), MUTATIONS, ids=repr)
def test_each_schema_keyword_is_refused_by_both(path: list[str | int], value: Any) -> None:
    data = _with(path, value)
    assert verdicts(data) == (False, False)
    with pytest.raises(IRInputError):
        parse_ir(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=irs)
def test_generated_irs_get_the_same_verdict(data: Any) -> None:
    fast, explained = verdicts(data)
    assert fast == explained, data


def test_messages_still_come_from_the_explaining_validator() -> None:
    with pytest.raises(IRInputError) as info:
        parse_ir(_with(["steps", 0, "resource"], "x\n"))
    assert [(p.pointer, p.message) for p in info.value.problems] == [
        ("/steps/0/resource", "contains a control character")]
