"""Engine conformance: every declarative primitive of every shipped pack equals its CEL expansion
on both engines, and both engines reach the same decisions on generated IRs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irgov_policy.policy import CelEvalError, PolicyEngine, Primitive, create_engine
from irgov_policy.policy.primitives import PrimitiveError, RuleMatch

from .conftest import ENGINES, REPO, baseline_engine

SHIPPED = sorted((REPO / "irgov_policy" / "data").glob("*.irgov.yaml"))
assert SHIPPED, "no shipped packs found"


def policy_of(paths: list[Path]) -> Any:
    return PolicyEngine.from_paths(paths, "celpy", use_plugins=False).policy


POLICY = policy_of(SHIPPED)
PRIMITIVES: list[Primitive] = POLICY.primitives()
VOCAB = baseline_engine("celpy").policy
NAMES = sorted(VOCAB.actions | VOCAB.providers)

name_text = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(NAMES).map(lambda n: n.upper()),
    st.sampled_from(["deploy.", "webgen", "webgen.", "webgenesis", "course_factory.v2", "dns", "", "odoo.v18"]),
    st.builds(lambda a, b: f"{a}.{b}", st.sampled_from(["dns", "odoo", "course", "x", "deploy"]),
              st.text(alphabet="abc_.", max_size=6)),
    st.text(max_size=12),
)
marker_text = st.one_of(
    st.sampled_from(["prod", "PROD-EU", " live", "product", "batch_size", "bulky", "ebatch", "site:prod",
                     "account.move", " Sale.Order ", "x\u200bprod", "preproduction", "BULK"]),
    st.text(max_size=8),
)
any_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
              marker_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(marker_text | st.sampled_from(["model", "env"]), inner, max_size=3)),
    max_leaves=6)
steps = st.fixed_dictionaries({
    "action": name_text, "provider": name_text, "resource": marker_text,
    "params": st.dictionaries(st.sampled_from(["model", "mode", "batch_size", "x"]) | marker_text, any_json,
                              max_size=3),
    "constraints": st.dictionaries(st.sampled_from(["environment", "env", "region"]), any_json, max_size=2),
    "description": st.one_of(st.none(), marker_text),
})


def native_outcome(primitive: Primitive, step: dict[str, Any]) -> Any:
    try:
        return primitive.native(step)
    except PrimitiveError:
        return "error"


def cel_outcome(cel: Any, program: Any, activation: Any) -> Any:
    try:
        return cel.evaluate(program, activation)
    except CelEvalError:
        return "error"


def test_shipped_packs_use_every_kind_of_primitive() -> None:
    kinds = {type(p).__name__ for p in PRIMITIVES}
    assert kinds == {"UnknownAction", "UnknownProvider", "ProviderMismatch", "ActionTierMatch", "RuleMatch"}
    matches = [p for p in PRIMITIVES if isinstance(p, RuleMatch)]
    assert any(m.values for m in matches) and any(m.tokens for m in matches) and any(m.actions for m in matches)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_every_primitive_equals_its_cel_expansion(engine_name: str) -> None:
    cel = create_engine(engine_name)
    programs = [(p, cel.compile(p.cel_expansion())) for p in PRIMITIVES]

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps)
    def check(step: dict[str, Any]) -> None:
        activation = cel.activation({"step": step, "ir": {}, "constants": POLICY.constants})
        for primitive, program in programs:
            expected = native_outcome(primitive, step)
            assert cel_outcome(cel, program, activation) == expected, (primitive.cel_expansion(), step)

    check()


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6),
                         st.floats(allow_nan=False, allow_infinity=False, width=32),
                         st.sampled_from(["prod", "PROD-EU", "product", "batch_size", "bulky", " live ",
                                          "account.move", "Sale.Order ", "x\u200bprod", "ebatch", ""]),
                         st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6) | st.sampled_from(["bulk", "prod_db", "model"]),
                                                 inner, max_size=3)), max_leaves=8)
gen_step = st.fixed_dictionaries(
    {
        "action": st.sampled_from(sorted(VOCAB.actions) + ["custom.delete"]),
        "provider": st.sampled_from(sorted(VOCAB.providers)),
        "resource": st.sampled_from(["site/shop", "site:prod", "db-production-eu", "olive-oil", "x"]),
        "params": st.dictionaries(st.sampled_from(["model", "mode", "batch_size", "target", "n"]), json_values,
                                  max_size=3),
        "constraints": st.dictionaries(st.sampled_from(["environment", "env", "region"]), json_scalars,
                                       max_size=2),
    },
    optional={"idempotency_key": st.one_of(st.none(), st.sampled_from(["k", " ", ""])),
              "budget_cents": json_scalars},
)
gen_ir = st.builds(lambda s: {"tenant_id": "t", "request_id": "r", "steps": s}, st.lists(gen_step, min_size=1,
                                                                                           max_size=4))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gen_ir)
def test_both_engines_reach_the_same_decision(ir: dict[str, Any]) -> None:
    a = baseline_engine("celpy").evaluate(ir).to_dict()
    b = baseline_engine("cel-cpp").evaluate(ir).to_dict()
    for d in (a, b):
        for key in ("evaluated_at", "duration_us", "engine"):
            d.pop(key)
        for v in d["violations"]:
            if v["code"] == "RULE_ERROR":  # engines word their runtime errors differently
                v["message"] = v["message"].split(" failed:")[0]
    assert a == b
