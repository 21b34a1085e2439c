"""Which `step` fields an activation must carry: only those the rules select, and all of them as
soon as a rule could observe the whole map."""

from __future__ import annotations

from pathlib import Path

import pytest

from irgov_policy.policy import PolicyEngine
from irgov_policy.policy.cel_text import blank_strings, selected_step_fields


@pytest.mark.parametrize("sources,expected", [
    (["step.a == 1", 'normalize(step.b) == "step.c"'], {"a", "b"}),
    (["step.a.startsWith('x')", "step . b > 0"], {"a", "b"}),
    (["true"], set()),
    (["size(step) > 1"], None),
    (['step.all(k, k == "x")'], None),
    (["ir.steps.exists(step, step.a == 1)"], None),
    (["step.params.step == 1"], None),
    (["x.step.a == 1"], None),
    (['step["params"] == {}'], None),
])
def test_selected_step_fields(sources: list[str], expected: set[str] | None) -> None:
    got = selected_step_fields(sources)
    assert (None if got is None else set(got)) == expected


def test_blank_strings_keeps_offsets() -> None:
    source = 'a == "x\\"y" && b == r\'z\' && c == """q"""'
    blank = blank_strings(source)
    assert len(blank) == len(source)
    assert "x" not in blank and "z" not in blank and "q" not in blank
    assert blank.startswith('a == "') and "&& b == r'" in blank


def test_comments_are_blanked_like_strings() -> None:
    source = 'step.a == 1 // not step.b, nor constants.x\n&& "//" == "//"'
    blank = blank_strings(source)
    assert len(blank) == len(source) and "step.b" not in blank and "constants" not in blank
    assert blank.endswith('\n&& "  " == "  "')
    assert selected_step_fields([source]) == {"a"}


@pytest.mark.parametrize("engine", ["celpy", "cel-cpp"])
def test_rules_that_observe_the_whole_step_still_see_every_field(tmp_path: Path, engine: str) -> None:
    pack = tmp_path / "whole.irgov.yaml"
    pack.write_text("""apiVersion: irgov.dev/v1
kind: RulePack
metadata: {name: whole, version: "1"}
vocabularies:
  actions: [a.run]
  providers: [a.p]
providerFamilies: {a: [a]}
rules:
  - id: ten-fields
    when: size(step) == 10 && step.exists(k, k == "params") && step["params"].x == 1
    tier: 2
    reason: sees the whole step
  - id: by-field
    when: step.resource == "r"
    tier: 1
    reason: selects one field
""", encoding="utf-8")
    policy = PolicyEngine.from_paths([pack], engine, use_plugins=False, budget_ms=60_000)
    assert policy.policy.step_fields is None
    decision = policy.evaluate({"tenant_id": "t", "steps": [
        {"action": "a.run", "provider": "a.p", "resource": "r", "params": {"x": 1}, "idempotency_key": "k"}]})
    assert decision.violations == ()
    assert {h.rule for h in decision.steps[0].hits} == {"ten-fields", "by-field"}
