"""Both CEL engines agree on generated expressions over the declared variables, evaluated on
generated steps (optional keys present or not, values of every JSON type), and every shipped
primitive's native path agrees with them inside those expressions.

The expressions lean on what engines get wrong: `has()`, field selections on absent keys and
on non-maps, errors inside `&&`/`||`/`!`/`?:` on either side, and the comprehension macros."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irgov_policy.policy import CelCompileError, CelEvalError, PolicyEngine, create_engine
from irgov_policy.policy.primitives import PrimitiveError

from .conftest import ENGINES, REPO

ENGINE_OBJECTS = {name: create_engine(name) for name in ENGINES}
POLICY = PolicyEngine.from_paths(sorted((REPO / "policies").glob("*.irgov.yaml")), "celpy", use_plugins=False).policy
PRIMITIVES = POLICY.primitives()

OPTIONAL_PATHS = ["step.constraints.region", "step.constraints.env", "step.params.model", "step.params.items",
                  "step.params.model.name", "step.constraints.region.zone", "step.action.name",
                  "ir.labels.team", "step.budget_cents"]
STRING_PATHS = ["step.action", "step.provider", "step.resource", "ir.tenant_id"]
LITERALS = ['"eu"', '"prod"', '"account.move"', '""', "1", "0", "null", "true", '["eu", "us"]']

path = st.sampled_from(OPTIONAL_PATHS + STRING_PATHS)
literal = st.sampled_from(LITERALS)

atoms = st.one_of(
    st.sampled_from(["true", "false"]),
    st.sampled_from(OPTIONAL_PATHS).map(lambda p: f"has({p})"),
    st.builds(lambda p, op, v: f"{p} {op} {v}", path, st.sampled_from(["==", "!="]), literal),
    st.builds(lambda p: f'{p} in ["eu", "prod"]', path),
    st.builds(lambda p, s: f'{p}.startsWith("{s}")', path, st.sampled_from(["e", "pr", ""])),
    st.builds(lambda p: f"size({p}) > 1", path),
    st.builds(lambda p: f"{p} > 2", path),
    st.builds(lambda p: f'hasAnyToken({p}, ["prod", "live"])', path),
    st.builds(lambda p: f'normalize({p}) == "eu"', path),
    st.builds(lambda p, m: f'{p}.{m}(x, x == "eu")', st.sampled_from(["step.params.items", "step.constraints.env"]),
              st.sampled_from(["exists", "all", "exists_one"])),
    st.sampled_from(["1 / step.params.n > 0", "step.params.items[1] == \"eu\""]),
    st.sampled_from(range(len(PRIMITIVES))).map(lambda i: f"({PRIMITIVES[i].cel_expansion()})"),
)


def _combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, b: f"({a} && {b})", inner, inner),
        st.builds(lambda a, b: f"({a} || {b})", inner, inner),
        inner.map(lambda a: f"!({a})"),
        st.builds(lambda c, a, b: f"({c} ? {a} : {b})", inner, inner, inner),
    )


expressions = st.recursive(atoms, _combine, max_leaves=6)

scalar = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["eu", "prod", "us", "", "live eu"]))
value = st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(st.sampled_from(["name", "zone"]), scalar,
                                                                      max_size=2))
steps = st.fixed_dictionaries({
    "index": st.just(0),
    "action": st.sampled_from(["dns.update_record", "course.create", "odoo.update_record"]),
    "provider": st.sampled_from(["dns.hetzner", "odoo.v17", "x"]),
    "resource": st.sampled_from(["zone/eu", "site:prod", "db"]),
    "params": st.dictionaries(st.sampled_from(["model", "items", "n", "bulk"]), value, max_size=3),
    "constraints": st.dictionaries(st.sampled_from(["region", "env", "environment"]), value, max_size=2),
    "idempotency_key": st.just("k"),
    "budget_cents": st.one_of(st.none(), st.integers(0, 5)),
    "step_id": st.just("s0"),
    "description": st.none(),
})
irs = st.fixed_dictionaries({"tenant_id": st.just("t"), "request_id": st.just("r"),
                             "labels": st.dictionaries(st.sampled_from(["team", "env"]), st.sampled_from(["a", "prod"]),
                                                       max_size=2), "step_count": st.just(1)})


def outcome(engine_name: str, source: str, variables: dict[str, Any]) -> Any:
    engine = ENGINE_OBJECTS[engine_name]
    try:
        program = engine.compile(source)
    except CelCompileError:
        return "compile error"
    try:
        return engine.evaluate(program, engine.activation(variables))
    except CelEvalError:
        return "error"


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, steps, irs)
def test_engines_agree_on_generated_expressions(source: str, step: dict[str, Any], ir: dict[str, Any]) -> None:
    variables = {"step": step, "ir": ir, "constants": POLICY.constants}
    results = {name: outcome(name, source, variables) for name in ENGINES}
    assert len(set(map(repr, results.values()))) == 1, json.dumps([source, step, ir, repr(results)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(PRIMITIVES))), expressions, steps)
def test_native_primitives_agree_inside_expressions(index: int, other: str, step: dict[str, Any]) -> None:
    primitive = PRIMITIVES[index]
    try:
        native: Any = primitive.native(step)
    except PrimitiveError:
        native = "error"
    variables = {"step": step, "ir": {}, "constants": POLICY.constants}
    for name in ENGINES:
        assert outcome(name, primitive.cel_expansion(), variables) == native, (name, step)
    # `false && x` and `true || x` decide alone whatever the primitive does, on both engines.
    for name in ENGINES:
        assert outcome(name, f"false && ({primitive.cel_expansion()})", variables) is False
        assert outcome(name, f"({primitive.cel_expansion()}) || true", variables) is True


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("source,constraints,expected", [
    ('has(step.constraints.region) && step.constraints.region == "x"', {}, False),
    ('has(step.constraints.region) && step.constraints.region == "x"', {"region": "x"}, True),
    ('step.constraints.region == "x" && has(step.constraints.region)', {}, False),
    ('!has(step.constraints.region) || step.constraints.region == "x"', {}, True),
    ('step.constraints.region == "x" || true', {}, True),
    ('false || step.constraints.region == "x"', {}, "error"),
    ('has(step.constraints.region.zone)', {}, "error"),
    ('has(step.constraints.region.zone)', {"region": "eu"}, "error"),
    ('has(step.constraints.region.zone) || true', {"region": "eu"}, True),
    ('step.constraints.region.zone == "a" || true', {"region": "eu"}, True),
    ('[1, 0].exists(x, 1 / x > 0)', {}, True),
    ('[1, 0].all(x, 1 / x > 0)', {}, "error"),
    ('[0, 1].all(x, 1 / x > 5)', {}, False),
])
def test_error_absorption_follows_the_spec(engine_name: str, source: str, constraints: dict[str, Any],
                                           expected: Any) -> None:
    step = {"constraints": constraints, "params": {}, "action": "a"}
    assert outcome(engine_name, source, {"step": step, "ir": {}, "constants": {}}) == expected
