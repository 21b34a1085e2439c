"""The evaluator with the baseline pack agrees with the hand-written reference on generated IRs:
status, risk tier, per-step tiers, violation codes (in order) and the IR hash, on both engines,
from decoded IRs and from JSON bytes. The reference imports nothing from the package; for an
IR it finds malformed, the evaluator must REJECT with `INVALID_IR` problems only."""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irgov_policy.policy import PolicyEngine

from .conftest import BASELINE, REPO, load_reference

reference = load_reference()

ENGINES = ["celpy", "cel-cpp"]
_ENGINES: dict[str, PolicyEngine] = {}


def engine_named(name: str) -> PolicyEngine:
    # A generous budget: a loaded machine must not turn a decision into BUDGET_EXCEEDED.
    if name not in _ENGINES:
        _ENGINES[name] = PolicyEngine.from_paths([BASELINE], name, use_plugins=False, budget_ms=120_000)
    return _ENGINES[name]


KNOWN_ACTIONS = sorted(reference.ACTIONS)
KNOWN_PROVIDERS = sorted(reference.PROVIDERS)
actions = st.one_of(
    st.sampled_from(KNOWN_ACTIONS),
    st.sampled_from(["custom.delete", "dns.update", "odoo", "Deploy.website", "deploy.website ", "infra.destroy.now",
                     "webgen", "course_factory.create"]),
    st.text(min_size=1, max_size=12),
)
providers = st.one_of(
    st.sampled_from(KNOWN_PROVIDERS),
    st.sampled_from(["dns.hetzner2", "odoo.v18", "course.v1", "ODOO.v17", "webgen"]),
    st.text(min_size=1, max_size=12),
)

# Fragments that make the tokenizer's edge cases likely: markers in every case and width,
# near misses that only a substring match would take, and separators of every kind.
MARKERS = ["prod", "PROD", "Prod", "production", "live", "LIVE", "\uff30\uff32\uff2f\uff24", "pro\u200bd",
           "pro\u200dd", "bulk", "BATCH", "batch", "Bulk"]
NEAR_MISSES = ["product", "catalog", "reproduce", "delivery", "olive", "oil", "alive", "check", "preproduction",
               "bulky", "ebatch", "livestock", "prodx", "batches", "size", "eu", "staging", "dev", "1", "0"]
SEPARATORS = ["-", "_", ":", "/", " ", ".", "\u200b", "\u3000", "\t", "\n", "\x00", "\u00e9", "\u00df", "\u0130",
              "", "\ufb01", "\u2460"]
fragment = st.one_of(st.sampled_from(MARKERS), st.sampled_from(NEAR_MISSES), st.sampled_from(SEPARATORS),
                     st.text(max_size=4))
texts = st.lists(fragment, max_size=6).map("".join)
# Resources must have no control characters; some generated ones do and are then INVALID_IR.
resources = st.one_of(texts.filter(lambda t: t != ""), st.sampled_from(["site:prod", "db-production-eu",
                                                                        "product-catalog", "course/intro"]))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=10,
)
params = st.one_of(
    st.dictionaries(texts, json_values, max_size=4),
    st.fixed_dictionaries({"model": st.one_of(st.sampled_from(["account.move", " Sale.Order ", "ACCOUNT.PAYMENT",
                                                                "res.partner", "account.move.line",
                                                                "\uff41ccount.move"]), scalars)},
                          optional={"bulk": json_values, "batch_size": st.integers(0, 10), "note": texts}),
)
environments = st.one_of(texts, st.sampled_from([" PROD", "PROD-EU", "prod-eu", "staging", "Production",
                                                 "preproduction", "live"]), json_values)
constraints = st.fixed_dictionaries({}, optional={"environment": environments, "env": environments,
                                                  "region": texts})
budgets = st.one_of(st.integers(-1000, 10**9), st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([5.0, -5.0, -0.0, 0.5]), st.booleans(), texts, st.none(),
                    st.lists(st.integers(), max_size=2), st.dictionaries(texts, st.integers(), max_size=2))
keys = st.one_of(st.sampled_from(["k-1", "", "   ", "\u200b", "\u3000", "\t"]), texts, st.none())
steps = st.fixed_dictionaries(
    {"action": actions, "provider": providers, "resource": resources},
    optional={"params": params, "constraints": constraints, "budget_cents": budgets,
              "idempotency_key": keys, "step_id": st.sampled_from(["a", "b", "c"])},
)
irs = st.fixed_dictionaries(
    {"tenant_id": st.sampled_from(["tenant_1", "t"]), "steps": st.lists(steps, min_size=1, max_size=4)},
    optional={"request_id": st.sampled_from(["req_1", "r"])},
)


def compare(engine: PolicyEngine, raw: dict[str, Any], *, as_bytes: bool = False) -> None:
    if as_bytes:
        data = json.dumps(raw).encode("utf-8")
        expected, decision = reference.decide_bytes(data), engine.evaluate(data)
    else:
        expected, decision = reference.decide(raw), engine.evaluate(raw)
    codes = decision.violation_codes()
    if expected.violation_codes == ["INVALID_IR"]:
        # The reference says only that the IR is malformed; the model names each problem.
        assert decision.status == "REJECT" and codes and set(codes) == {"INVALID_IR"}, (raw, codes)
        return
    got = (decision.status, decision.risk_tier, [s.tier for s in decision.steps], codes)
    assert got == (expected.status, expected.risk_tier, expected.step_tiers, expected.violation_codes), raw
    assert decision.ir_hash == expected.ir_hash


@pytest.mark.parametrize("engine_name", ENGINES)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=irs)
def test_evaluator_matches_the_reference(engine_name: str, raw: dict[str, Any]) -> None:
    compare(engine_named(engine_name), raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=irs)
def test_evaluator_matches_the_reference_from_bytes(raw: dict[str, Any]) -> None:
    compare(engine_named("auto"), raw, as_bytes=True)


def test_the_reference_shares_no_code_with_the_package() -> None:
    """The benchmark's baseline must not get faster or slower with the product: it imports no
    module of the package."""
    tree = ast.parse((REPO / "benchmarks" / "reference_baseline.py").read_text("utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported and not {m for m in imported if m.split(".")[0] == "irgov_policy"}, imported
    assert "rfc8785" in imported and "json" in imported


# Fixed cases for each defect the reference module lists, so a regression names its input.
DEFECT_STEPS: list[dict[str, Any]] = [
    {"resource": "product-catalog"}, {"resource": "reproduce"}, {"resource": "delivery"},
    {"resource": "olive-oil"}, {"resource": "alive-check"}, {"resource": "preproduction"},
    {"params": {"bulky": True}}, {"params": {"mode": "ebatch"}}, {"params": {"batch_size": 10}},
    {"resource": "site:prod"}, {"resource": "db-production-eu"}, {"constraints": {"environment": " PROD"}},
    {"constraints": {"environment": "PROD-EU"}}, {"constraints": {"env": "prod-eu"}},
    {"constraints": {"environment": "staging", "env": "prod"}}, {"resource": "pro\u200bd"},
    {"resource": "\uff30\uff32\uff2f\uff24"},
    {"action": "odoo.update_record", "provider": "odoo.v17", "params": {"model": " Sale.Order "}},
    {"action": "odoo.update_record", "provider": "odoo.v17", "params": {"model": 7}},
    {"action": "nope.action"}, {"provider": "nope.provider"}, {"provider": "dns.hetzner"},
    {"idempotency_key": None}, {"idempotency_key": " "}, {"budget_cents": "5"}, {"budget_cents": -1},
    {"budget_cents": 1.5}, {"budget_cents": True}, {"params": {"ratio": 0.1, "text": "a\x00b"}},
    {"resource": "bad\x01resource"}, {"resource": "course/x\n"}, {"resource": "\x7f"},
]


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("overrides", DEFECT_STEPS, ids=repr)
def test_defect_inputs_agree(engine_name: str, overrides: dict[str, Any]) -> None:
    step = {"action": "course.create", "provider": "course_factory.v1", "resource": "course/x",
            "idempotency_key": "k", **overrides}
    compare(engine_named(engine_name), {"tenant_id": "t", "steps": [step]})


def test_the_reference_is_not_trivially_equal() -> None:
    """The oracle itself distinguishes the statuses (a reference that always PASSed would agree
    with nothing above, but say it explicitly)."""
    base = {"action": "course.create", "provider": "course_factory.v1", "resource": "r", "idempotency_key": "k"}
    assert reference.decide({"tenant_id": "t", "steps": [base]}).status == "PASS"
    assert reference.decide({"tenant_id": "t", "steps": [{**base, "resource": "prod"}]}).status == "ESCALATE"
    assert reference.decide({"tenant_id": "t", "steps": [{**base, "action": "x"}]}).status == "REJECT"
