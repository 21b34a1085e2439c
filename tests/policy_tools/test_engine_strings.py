"""Both engines see strings whole, NUL characters included (cel-cpp's binding alone would cut
`"a\\x00b"` to `"a"`, so a NUL could hide a marker or blank a key)."""

from __future__ import annotations

import pytest

from irgov_policy.policy import create_engine

from .test_differential import engine_named


@pytest.mark.parametrize("name", ["celpy", "cel-cpp"])
@pytest.mark.parametrize("source,expected", [
    ("size(step.k)", 3),
    ("step.k", "a\x00b"),
    ("normalize(step.k)", "a\x00b"),
    ("tokens(step.m)", ["x", "prod"]),
    ("hasToken(step.m, 'prod')", True),
])
def test_nul_characters_reach_rules(name: str, source: str, expected: object) -> None:
    engine = create_engine(name)
    program = engine.compile(source)
    activation = engine.activation({"step": {"k": "a\x00b", "m": {"x\x00prod": 1}}})
    assert engine.evaluate(program, activation) == expected


@pytest.mark.parametrize("name", ["celpy", "cel-cpp"])
def test_a_nul_key_is_not_a_blank_key(name: str) -> None:
    step = {"action": "course.create", "provider": "course_factory.v1", "resource": "r", "idempotency_key": "\x00"}
    decision = engine_named(name).evaluate({"tenant_id": "t", "steps": [step]})
    assert decision.status == "PASS", decision.violations
