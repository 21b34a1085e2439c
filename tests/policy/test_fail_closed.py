"""Fail closed: erroring rules, non-boolean results, broken plugins and exhausted budgets REJECT."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.events import EventBus, MemorySink
from irgov_policy.events.payloads import payload_problems
from irgov_policy.hookspecs import hookimpl
from irgov_policy.model import IR, Step
from irgov_policy.plugins import get_plugin_manager, reset_plugin_manager
from irgov_policy.policy import Finding, PolicyEngine

from .conftest import BASELINE, ENGINES, PACK_HEADER, make_ir, write_pack

# Not about the budget: a loaded CI machine must not turn these decisions into BUDGET_EXCEEDED.
GENEROUS = 60_000

RULES = """vocabularies:
  actions: [course.generate_outline]
  providers: [course_factory.v1]
providerFamilies:
  course: [course_factory]
rules:
  - id: needs-owner
    when: step.params.owner == "ops"
    tier: 2
    reason: owned by ops
  - id: not-boolean
    when: size(step.resource)
    tier: 1
    reason: never a boolean
    mode: {mode}
  - id: absorbed-error
    when: step.params.owner == "x" || true
    tier: 1
    reason: an absorbed error is no error
"""


@pytest.mark.parametrize("engine_name", ENGINES)
def test_runtime_errors_and_non_booleans_are_rule_errors(tmp_path: Path, engine_name: str) -> None:
    path = write_pack(tmp_path, "strict", PACK_HEADER.format(name="strict") + RULES.format(mode="enforce"))
    engine = PolicyEngine.from_paths([path], engine_name, use_plugins=False, budget_ms=GENEROUS)
    d = engine.evaluate(make_ir({"params": {}}))
    assert d.status == "REJECT"
    errors = {v.rule: v for v in d.violations}
    assert set(errors) == {"needs-owner", "not-boolean"}
    assert all(v.code == "RULE_ERROR" and v.severity == "ERROR" and v.pack == "strict" for v in errors.values())
    assert errors["needs-owner"].message.startswith("rule `needs-owner` in pack `strict` failed: ")
    assert "owner" in errors["needs-owner"].message
    assert errors["not-boolean"].message.endswith("condition returned `12`, not a boolean")
    # the rule whose error is absorbed by `||` still fires
    assert [h.rule for h in d.steps[0].hits] == ["absorbed-error"]
    # and when nothing errors, the batch result is used
    ok = engine.evaluate(make_ir({"params": {"owner": "ops"}}))
    assert {h.rule for h in ok.steps[0].hits} == {"needs-owner", "absorbed-error"}


@pytest.mark.parametrize("engine_name", ENGINES)
def test_audit_mode_errors_still_reject(tmp_path: Path, engine_name: str) -> None:
    # An audit-mode rule cannot fire, but a rule that cannot be evaluated is never trusted.
    path = write_pack(tmp_path, "strict", PACK_HEADER.format(name="strict") + RULES.format(mode="audit"))
    engine = PolicyEngine.from_paths([path], engine_name, use_plugins=False, budget_ms=GENEROUS)
    d = engine.evaluate(make_ir({"params": {"owner": "ops"}}))
    assert [(v.code, v.rule) for v in d.violations] == [("RULE_ERROR", "not-boolean")]


def slow(value: Any) -> bool:
    time.sleep(0.02)
    return True


@pytest.mark.parametrize("engine_name", ENGINES)
def test_time_budget_exhaustion_rejects(tmp_path: Path, engine_name: str) -> None:
    body = "rules:\n  - id: slow\n    when: slowCheck(step.resource)\n    tier: 0\n    reason: slow\n"
    path = write_pack(tmp_path, "slow", PACK_HEADER.format(name="slow") + body)
    engine = PolicyEngine.from_paths([BASELINE, path], engine_name, functions={"slowCheck": slow},
                                     use_plugins=False, budget_ms=5)
    d = engine.evaluate(make_ir({}, {}, {}, {}))
    assert d.status == "REJECT"
    assert d.violation_codes() == ["BUDGET_EXCEEDED"]
    assert d.violations[-1].message == "evaluation exceeded its time budget of 5 ms at step 0"
    assert len(d.steps) == 1 and d.step_count == 4


def test_plugin_function_errors_are_rule_errors(tmp_path: Path) -> None:
    def boom(value: Any) -> bool:
        raise ValueError("backend down")

    body = "rules:\n  - id: boom\n    when: boom(step.resource)\n    tier: 1\n    reason: x\n"
    path = write_pack(tmp_path, "b", PACK_HEADER.format(name="b") + body)
    for engine_name in ENGINES:
        engine = PolicyEngine.from_paths([BASELINE, path], engine_name, functions={"boom": boom}, use_plugins=False,
                                           budget_ms=GENEROUS)
        [v] = engine.evaluate(make_ir()).violations
        assert v.code == "RULE_ERROR" and "backend down" in v.message, engine_name


class OwnerCheck:
    name = "owner-check"

    def check_step(self, step: Step, index: int, ir: IR) -> Iterable[Finding]:
        if step.params.get("owner") == "finance":
            yield Finding(rule="finance-owner", tier=3, reason="owned by finance")
        if step.params.get("owner") == "nobody":
            yield Finding(rule="no-owner", code="NO_OWNER", message="step has no owner")
        if step.params.get("owner") == "crash":
            raise RuntimeError("check crashed")

    def check_ir(self, ir: IR) -> Iterable[Finding]:
        if ir.labels.get("frozen") == "yes":
            yield Finding(rule="change-freeze", code="CHANGE_FREEZE", message="changes are frozen")


class Plugin:
    """A real plugin registered with the plugin manager, as an entry point would be."""

    @hookimpl
    def irgov_register_checks(self, register: Callable[..., None]) -> None:
        register(OwnerCheck())

    @hookimpl
    def irgov_register_cel_functions(self, register: Callable[..., None]) -> None:
        register("isWeekendRelease", lambda name: name.endswith("-weekend"))

    @hookimpl
    def irgov_register_rule_packs(self, register: Callable[..., None]) -> None:
        register(self.pack_path)

    def __init__(self, pack_path: Path) -> None:
        self.pack_path = pack_path


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugin]:
    # Only this test's plugin: installed provider plugins (such as the Odoo one) stay out.
    monkeypatch.setenv("IRGOV_PLUGINS", "test-policy-plugin-only")
    reset_plugin_manager()
    body = ("rules:\n  - id: weekend-release\n    when: isWeekendRelease(step.resource)\n"
            "    tier: 2\n    reason: weekend release\n")
    instance = Plugin(write_pack(tmp_path, "weekend", PACK_HEADER.format(name="weekend") + body))
    manager = get_plugin_manager()
    manager.register(instance, name="test-policy-plugin")
    try:
        yield instance
    finally:
        manager.unregister(instance)
        reset_plugin_manager()


@pytest.mark.parametrize("engine_name", ENGINES)
def test_plugin_checks_functions_and_packs(plugin: Plugin, engine_name: str) -> None:
    engine = PolicyEngine.default(engine_name, budget_ms=GENEROUS)
    assert [p.name for p in engine.packs] == ["baseline", "weekend"]
    d = engine.evaluate(make_ir({"resource": "course/launch-weekend"}, {"params": {"owner": "finance"}},
                                {"params": {"owner": "nobody"}}, {"params": {"owner": "crash"}},
                                labels={"frozen": "yes"}))
    assert [h.rule for h in d.steps[0].hits] == ["routine-action", "weekend-release"]
    assert d.steps[1].tier == 3
    assert any(h.pack == "plugin:owner-check" and h.rule == "finance-owner" for h in d.steps[1].hits)
    assert [(v.step_index, v.code, v.pack) for v in d.violations] == [
        (2, "NO_OWNER", "plugin:owner-check"), (3, "RULE_ERROR", "plugin:owner-check"),
        (None, "CHANGE_FREEZE", "plugin:owner-check")]
    assert "check crashed" in d.violations[1].message


@pytest.mark.parametrize("engine_name", ENGINES)
def test_each_status_publishes_its_event_with_the_seed_payload(engine_name: str) -> None:
    engine = PolicyEngine.from_paths([BASELINE], engine_name, use_plugins=False, budget_ms=GENEROUS)
    sink = MemorySink()
    bus = EventBus([sink])
    cases = {
        "ir.validated_pass": make_ir(),
        "ir.validated_escalate": make_ir({"action": "dns.update_records", "provider": "dns.route53"}),
        "ir.validated_reject": make_ir({"action": "nope"}),
    }
    for expected, ir in cases.items():
        decision = engine.evaluate(ir, bus=bus)
        event = sink.events[-1]
        assert event.type == expected
        assert payload_problems(event.type, event.payload) == []
        assert event.correlation_id == "req_1" and event.tenant_id == "tenant_1"
        assert event.payload["ir_hash"] == decision.ir_hash
    escalate = sink.of_type("ir.validated_escalate")[0].payload
    assert escalate["high_risk_steps"] == [{"step_index": 0, "action": "dns.update_records",
                                            "provider": "dns.route53", "risk_tier": 2,
                                            "reason": "changes dns or installs an odoo module"}]
    invalid = engine.evaluate(b"{not json", bus=bus)
    assert sink.events[-1].type == "ir.validated_reject" and invalid.status == "REJECT"
    assert payload_problems("ir.validated_reject", sink.events[-1].payload) == []


def test_a_failing_sink_does_not_change_the_decision() -> None:
    class Broken:
        name = "broken"

        def deliver(self, event: Any) -> None:
            raise ConnectionError("down")

    engine = PolicyEngine.from_paths([BASELINE], "celpy", use_plugins=False, budget_ms=GENEROUS)
    bus = EventBus([Broken()])
    try:
        d = engine.evaluate(make_ir(), bus=bus)
    finally:
        bus.close(timeout=1.0)  # its relay would otherwise retry the broken sink for the whole session
    assert d.status == "PASS"
