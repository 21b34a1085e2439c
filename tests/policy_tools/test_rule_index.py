"""Rule indexing: the requirements read from rules, and a property test that indexed and
unindexed evaluation give identical decisions (hits, violations, tiers, reasons) on generated
packs and IRs, on both engines."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irgov_policy.policy import PolicyEngine, available_engines
from irgov_policy.policy.content_guards import ContentGuard, guards_of
from irgov_policy.policy.rule_index import StepRequirement, conjuncts, inline_constants, requirements_of

from .conftest import BASELINE, REPO


def _generated_module() -> Any:
    name = "irgov_generated_pack"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "generated_pack.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


generated = _generated_module()
CONSTANTS = {"odoo_record_actions": ["odoo.create_record", "odoo.update_record"]}


@pytest.mark.parametrize(("when", "expected"), [
    ('step.action == "dns.update_records" && x', [StepRequirement("action", frozenset({"dns.update_records"}))]),
    ("'a.b' == step.action", [StepRequirement("action", frozenset({"a.b"}))]),
    ('step.action in ["a", \'b\'] && y && z', [StepRequirement("action", frozenset({"a", "b"}))]),
    ("step.action in constants.odoo_record_actions",
     [StepRequirement("action", frozenset({"odoo.create_record", "odoo.update_record"}))]),
    ('step.action in constants["odoo_record_actions"]',
     [StepRequirement("action", frozenset({"odoo.create_record", "odoo.update_record"}))]),
    ('x && step.action.startsWith("dns.")', [StepRequirement("action", prefixes=("dns.",))]),
    ('family(step.provider) == "odoo"', [StepRequirement("provider", frozenset({"odoo"}), ("odoo.",))]),
    ('(step.provider == "p" && (step.action == "a" && q))',
     [StepRequirement("provider", frozenset({"p"})), StepRequirement("action", frozenset({"a"}))]),
    # Not indexable: alternatives, conditionals, negations, escapes, computed values, comments.
    ('step.action == "a" || x', []),
    ('step.action == "a" ? x : y', []),
    ('!(step.action == "a") && x', []),
    ('step.action == "a\\u0062" && x', []),
    ('step.action == r"a" && x', []),
    ('step.action == "a" + "b" && x', []),
    ('step.action.lowerAscii() == "a" && x', []),
    ('step.action == "a" // a comment', []),
    ("ir.steps.exists(step, step.action == \"a\")", []),
    ("step.action in constants.unknown_name", []),
])
def test_requirements_read_from_conditions(when: str, expected: list[StepRequirement]) -> None:
    assert list(requirements_of(when, None, CONSTANTS)) == expected


@pytest.mark.parametrize(("when", "expected"), [
    ('step.action == "a" && hasToken(step.params, "Prod")',
     [ContentGuard("tokens", "step", "params", frozenset({"prod"}))]),
    ("hasAnyToken(step.resource, ['x', 'y']) && (z && hasAnyToken(ir.labels, constants.markers))",
     [ContentGuard("tokens", "step", "resource", frozenset({"x", "y"})),
      ContentGuard("tokens", "ir", "labels", frozenset({"prod", "live", "llve"}))]),
    ('"key" in step.params && step.resource.startsWith("site:")',
     [ContentGuard("key", "step", "params", ("key",)), ContentGuard("startsWith", "step", "resource", ("site:",))]),
    ('step.description.endsWith("!") && step.step_id.contains("a")',
     [ContentGuard("endsWith", "step", "description", ("!",)), ContentGuard("contains", "step", "step_id", ("a",))]),
    # Not guards: alternatives, negations, other variables and fields, computed or escaped arguments.
    ('hasToken(step.params, "x") || y', []),
    ('!hasToken(step.params, "x") && y', []),
    ('hasToken(x.params, "x") && hasToken(step.nope, "x") && hasToken(step.params.a, "x")', []),
    ('hasToken(step.params, "x" + "y") && hasToken(step.params, "\\x") && "k" in step.params.a', []),
    ("hasAnyToken(step.params, constants.unknown_name)", []),
])
def test_guards_read_from_conditions(when: str, expected: list[ContentGuard]) -> None:
    assert list(guards_of(conjuncts(when), {"markers": ["PROD", "live"]})) == expected


def test_a_guard_refutes_only_what_is_certainly_false() -> None:
    [tokens, key, prefix] = guards_of(conjuncts(
        'hasToken(step.params, "prod") && "k" in step.params && step.resource.startsWith("s")'), {})
    cache: dict[str, frozenset[str]] = {}
    step = {"params": {"k": ["PROD-eu"]}, "resource": "site"}
    assert not tokens.refutes(step, {}, cache) and not key.refutes(step, {}, cache)
    assert not prefix.refutes(step, {}, cache) and cache == {"params": frozenset({"k", "prod", "eu"})}
    other = {"params": {"x": 1}, "resource": "web"}
    assert tokens.refutes(other, {}, {}) and key.refutes(other, {}, {}) and prefix.refutes(other, {}, {})
    # Values of another type are left to CEL, which errors or compares as it does.
    odd = {"params": None, "resource": 7}
    assert tokens.refutes(odd, {}, {}) and not key.refutes(odd, {}, {}) and not prefix.refutes(odd, {}, {})


def test_match_actions_is_a_requirement() -> None:
    assert requirements_of(None, frozenset({"a"}), {}) == (StepRequirement("action", frozenset({"a"})),)


def test_family_requirement_admits_exactly_the_family() -> None:
    [requirement] = requirements_of('family(step.action) == "dns"', None, {})
    assert requirement.admits("dns", "p") and requirement.admits("dns.update_records", "p")
    assert not requirement.admits("dnsx.update", "p") and not requirement.admits("dn", "p")


_ENGINES: dict[tuple[str, bool], PolicyEngine] = {}


def engine(name: str, indexed: bool, tmp: Path) -> PolicyEngine:
    key = (name, indexed)
    if key not in _ENGINES:
        pack = tmp / "generated.irgov.yaml"
        if not pack.exists():
            pack.write_text(generated.generated_pack(120, seed=11, with_errors=True), "utf-8")
        _ENGINES[key] = PolicyEngine.from_paths([BASELINE, pack], name, use_plugins=False, budget_ms=600_000,
                                                index_rules=indexed)
    return _ENGINES[key]


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated")


def test_the_generated_pack_is_mostly_indexed(pack_dir: Path) -> None:
    policy = engine("celpy", True, pack_dir).policy
    indexed = [r for r in policy.step_rules if r.requirements]
    assert policy.planner.indexed and len(indexed) > len(policy.step_rules) // 2
    plan = policy.step_plan("dns.update_records", "dns.hetzner")
    assert 0 < len(plan.rules) < len(policy.step_rules)
    assert all(r in plan.rules for r in policy.step_rules if not r.requirements)
    guarded = [r for r in plan.rules if r.guards]
    assert guarded and len(plan.batch_rules) < len([r for r in plan.rules if r.program is not None])
    assert {g.kind for r in policy.step_rules for g in r.guards} == {
        "tokens", "key", "startsWith", "endsWith", "contains"}


words = st.sampled_from([f"m{i}" for i in range(0, 120, 7)] + [f"k{i}" for i in range(0, 120, 5)]
                        + [f"u{i}" for i in range(0, 120, 9)] + ["prod", "bulk", "missing", "x"])
actions = st.one_of(st.sampled_from(generated.ACTIONS), st.sampled_from(["dns", "dns.", "odoo.x", "zzz", "infra"]))
providers = st.one_of(st.sampled_from(generated.PROVIDERS), st.sampled_from(["odoo", "dns.x", "nope"]))
steps = st.fixed_dictionaries({
    "action": actions, "provider": providers,
    "resource": st.one_of(words, st.sampled_from([f"r{i}-x" for i in range(0, 120, 3)])),
    "idempotency_key": st.just("k"),
    "params": st.dictionaries(words, st.one_of(words, st.integers(0, 3)), max_size=3),
})
irs = st.fixed_dictionaries({"tenant_id": st.just("t"), "steps": st.lists(steps, min_size=1, max_size=4)},
                            optional={"labels": st.dictionaries(words, words, max_size=2)})
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _decision(engine: PolicyEngine, raw: dict[str, Any]) -> dict[str, Any]:
    out = engine.evaluate(raw, now=NOW).to_dict()
    out.pop("duration_us")
    return out


@pytest.mark.parametrize("name", available_engines())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(raw=irs)
def test_indexed_and_unindexed_evaluation_decide_alike(name: str, raw: dict[str, Any], pack_dir: Path) -> None:
    indexed, unindexed = engine(name, True, pack_dir), engine(name, False, pack_dir)
    assert _decision(indexed, raw) == _decision(unindexed, raw)


@pytest.mark.parametrize("name", available_engines())
def test_every_action_decides_alike_with_rules_firing(name: str, pack_dir: Path) -> None:
    """Steps rich enough to fire most generated rules (every marker token, with and without the
    key the erroring rules read), for every action and several providers."""
    indexed, unindexed = engine(name, True, pack_dir), engine(name, False, pack_dir)
    markers = {f"{p}{i}": 1 for i in range(120) for p in ("m", "k")}
    fired = errors = 0
    for action in [*generated.ACTIONS, "zzz", "dns"]:
        steps = [{"action": action, "provider": provider, "resource": f"r{3 * j}-x m{j} u{j}",
                  "idempotency_key": "k", "params": {**markers, **({"missing": 1} if j % 2 else {})}}
                 for j, provider in enumerate(["odoo.v17", "dns.hetzner", "infra.terraform", "webgen.v1"])]
        raw = {"tenant_id": "t", "steps": steps}
        decided = _decision(indexed, raw)
        assert decided == _decision(unindexed, raw)
        fired += sum(1 for s in decided["steps"] for h in s["hits"] if h["rule"].startswith("generated-"))
        errors += sum(1 for v in decided["violations"] if v["code"] == "RULE_ERROR")
    assert fired > 100 and errors > 0, (fired, errors)


def test_constants_are_inlined_only_when_every_use_is_a_selection() -> None:
    constants = {"a": ["x", "y\"z"], "b": ["\u00e9"]}
    assert inline_constants('step.action in constants.a && "constants.a" != constants["b"][0]', constants) == (
        'step.action in ["x", "y\\"z"] && "constants.a" != ["\u00e9"][0]')
    assert inline_constants("size(constants) > 0 && step.action in constants.a", constants) == (
        "size(constants) > 0 && step.action in constants.a")
    assert inline_constants("step.action in constants.nope", constants) == "step.action in constants.nope"


def test_batch_programs_are_cut_into_chunks(pack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cel-cpp refuses expressions over 100,000 characters: large packs get several programs."""
    import irgov_policy.policy.rule_index as rule_index

    indexed = engine(available_engines()[0], True, pack_dir)  # writes the pack
    monkeypatch.setattr(rule_index, "MAX_BATCH_CHARACTERS", 300)
    chunked = PolicyEngine.from_paths([BASELINE, pack_dir / "generated.irgov.yaml"], available_engines()[0],
                                      use_plugins=False, budget_ms=600_000, index_rules=False)
    plan = chunked.policy.step_plan("dns.update_records", "dns.hetzner")
    assert len(plan.batches) > 5
    raw = {"tenant_id": "t", "steps": [{"action": a, "provider": "dns.hetzner", "resource": "r0-x m1",
                                        "idempotency_key": "k", "params": {"m1": 1, "k1": 1}}
                                       for a in generated.ACTIONS[:8]]}
    assert _decision(chunked, raw) == _decision(indexed, raw)
