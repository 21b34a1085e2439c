from __future__ import annotations

import os
from pathlib import Path

import pytest

from irgov_policy.errors import PackLoadError
from irgov_policy.policy import (
    CelCompileError,
    PolicyEngine,
    create_engine,
    load_pack,
    parse_pack,
    rulepack_schema,
)

from .conftest import BASELINE, ENGINES, PACK_HEADER, REPO, make_ir, write_pack


def load_errors(tmp_path: Path, body: str, engine: str = "celpy", name: str = "p") -> list[str]:
    path = write_pack(tmp_path, name, PACK_HEADER.format(name=name) + body)
    with pytest.raises(PackLoadError) as info:
        PolicyEngine.from_paths([path], engine, use_plugins=False)
    return [str(p).replace(str(tmp_path) + "/", "") for p in info.value.problems]


def test_the_baseline_pack_exists_once_and_is_the_one_the_package_loads() -> None:
    from irgov_policy.policy.shipped import baseline_pack_path

    copies = []
    for folder, subfolders, files in os.walk(REPO):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d != "build"]
        copies += [Path(folder) / name for name in files if name == "baseline.irgov.yaml"]
    assert copies == [BASELINE]
    assert baseline_pack_path().resolve() == BASELINE.resolve()


def test_baseline_starts_with_the_schema_modeline_and_names_the_schema() -> None:
    first = BASELINE.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    assert (BASELINE.parent / first.split("=", 1)[1]).resolve() == (
        REPO / "irgov_policy/policy/schemas/rulepack.schema.json").resolve()
    assert rulepack_schema()["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_baseline_has_the_reference_vocabulary() -> None:
    pack = load_pack(BASELINE)
    assert pack.actions is not None and len(pack.actions) == 34
    assert pack.providers is not None and len(pack.providers) == 13
    assert pack.escalation_threshold == 2


def test_digest_ignores_comments_and_layout() -> None:
    text = BASELINE.read_text(encoding="utf-8")
    pack = parse_pack(text, "a.irgov.yaml")
    other = parse_pack("# another comment\n" + text.replace("actions: [dns.delete_zone", "actions:  [dns.delete_zone"),
                       "b.irgov.yaml")
    assert pack.digest == other.digest
    assert pack.digest.startswith("sha256:") and len(pack.digest) == 7 + 64
    changed = parse_pack(text.replace("tier: 3\n    reason: bulk", "tier: 2\n    reason: bulk"), "c.irgov.yaml")
    assert changed.digest != pack.digest


def test_schema_errors_point_at_the_value(tmp_path: Path) -> None:
    body = "rules:\n  - id: r1\n    when: 'true'\n    tier: 7\n    reason: x\n"
    assert load_errors(tmp_path, body) == ["p.irgov.yaml:9:11: `rules/0/tier`: 7 is greater than the maximum of 3"]


def test_integral_floats_are_not_tiers(tmp_path: Path) -> None:
    # Draft 7 calls `3.0` an integer: it reached decisions and events as `"risk_tier": 3.0`.
    body = "escalation:\n  threshold: 2.0\nrules:\n  - id: r1\n    when: 'true'\n    tier: 3.0\n    reason: x\n"
    assert load_errors(tmp_path, body) == ["p.irgov.yaml:7:14: `escalation/threshold`: 2.0 is not of type `integer`",
                                           "p.irgov.yaml:11:11: `rules/0/tier`: 3.0 is not of type `integer`"]
    assert load_errors(tmp_path, "rules:\n  - id: r1\n    when: 'true'\n    tier: true\n    reason: x\n") == [
        "p.irgov.yaml:9:11: `rules/0/tier`: true is not of type `integer`"]


def test_unknown_field_points_at_the_key(tmp_path: Path) -> None:
    body = "rules:\n  - id: r1\n    when: 'true'\n    tier: 1\n    reason: x\n    severity: ERROR\n"
    assert load_errors(tmp_path, body) == ["p.irgov.yaml:11:5: `rules/0`: unknown field `severity`"]


def test_rule_with_both_tier_and_violation_is_refused(tmp_path: Path) -> None:
    body = ("rules:\n  - id: r1\n    when: 'true'\n    tier: 1\n    reason: x\n"
            "    violation: {code: X, message: m}\n")
    assert load_errors(tmp_path, body) == [
        "p.irgov.yaml:7:5: `rules/0`: a rule has either `tier` and `reason`, or `violation`, not both nor neither"]


@pytest.mark.parametrize("engine", ENGINES)
def test_cel_syntax_error_is_located_inside_a_folded_expression(tmp_path: Path, engine: str) -> None:
    body = ("rules:\n"
            "  - id: broken\n"
            "    when: >-\n"
            "      step.action == 'dns.update_records'\n"
            "      && step.resource ==\n"
            "    tier: 2\n"
            "    reason: x\n")
    [message] = load_errors(tmp_path, body, engine)
    assert message.startswith("p.irgov.yaml:10:")
    assert "rule `broken`" in message


@pytest.mark.parametrize("engine", ENGINES)
def test_undeclared_name_is_located_at_its_column(tmp_path: Path, engine: str) -> None:
    body = ("rules:\n"
            "  - id: typo\n"
            "    when: hasAnyToken(step.resource, prod_markers)\n"
            "    tier: 2\n"
            "    reason: x\n")
    [message] = load_errors(tmp_path, body, engine)
    # `prod_markers` starts at column 38 of line 8
    assert message == "p.irgov.yaml:8:38: rule `typo`: undeclared reference to `prod_markers`"


@pytest.mark.parametrize("engine", ENGINES)
def test_undeclared_function_is_refused(tmp_path: Path, engine: str) -> None:
    body = "rules:\n  - id: f\n    when: isProd(step.resource)\n    tier: 2\n    reason: x\n"
    [message] = load_errors(tmp_path, body, engine)
    assert message.startswith("p.irgov.yaml:8:")
    assert "undeclared reference to" in message and "isProd" in message


@pytest.mark.parametrize("engine", ENGINES)
def test_expression_limits_are_checked_at_load(tmp_path: Path, engine: str) -> None:
    deep = "(" * 30 + "true" + ")" * 30
    body = f"rules:\n  - id: deep\n    when: '{deep}'\n    tier: 1\n    reason: x\n"
    [message] = load_errors(tmp_path, body, engine)
    assert message == "p.irgov.yaml:8:36: rule `deep`: expression nested deeper than 24 levels"
    long = "true" + " && true" * 600
    body = f"rules:\n  - id: long\n    when: '{long}'\n    tier: 1\n    reason: x\n"
    [message] = load_errors(tmp_path, body, engine)
    assert "exceeds the limit of 4096" in message


@pytest.mark.parametrize("engine", ENGINES)
def test_unknown_constant_in_when_is_a_load_error(tmp_path: Path, engine: str) -> None:
    # Both engines compile `constants.prod_envs` (a key of a dynamic map): without this check the
    # pack loaded and every IR was rejected with RULE_ERROR at run time.
    body = ("constants:\n  production_markers: [prod]\nrules:\n  - id: prod-dns\n    when: >-\n"
            "      step.action == \"dns.update_records\" &&\n"
            "      constants.production_markers.exists(m, m == step.resource) ||\n"
            "      step.resource in constants.prod_envs\n    tier: 2\n    reason: x\n"
            "  - id: indexed\n    when: 'step.resource in constants[\"live_envs\"]'\n    tier: 2\n    reason: x\n"
            "  - id: commented\n    when: |\n      true // not constants.in_a_comment\n    tier: 0\n    reason: x\n")
    assert load_errors(tmp_path, body, engine) == [
        "p.irgov.yaml:13:34: rule `prod-dns`: unknown constant `prod_envs`",
        "p.irgov.yaml:17:39: rule `indexed`: unknown constant `live_envs`",
    ]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("deep", [
    "!" * 2000 + "true",                      # unary chains: no bracket, yet one tree level each
    "-" * 3000 + "1 == 1",
    "step" + ".a" * 1500 + " == 1",           # member chains
    "step" + '["a"]' * 40 + " == 1",          # index chains
    " + ".join(["1"] * 30) + " == 0",         # operator chains
])
def test_nesting_without_brackets_is_refused_alike_on_both_engines(tmp_path: Path, engine: str, deep: str) -> None:
    # Unrefused, the first three overflowed celpy's recursion (a traceback) while cel-cpp accepted
    # some and refused others: a pack must load, or not, the same way on every engine.
    body = f"rules:\n  - id: deep\n    when: '{deep}'\n    tier: 1\n    reason: x\n"
    [message] = load_errors(tmp_path, body, engine)
    assert message.startswith("p.irgov.yaml:8:") and message.endswith("expression nested deeper than 24 levels")


def test_expressions_within_the_limits_compile_on_both_engines() -> None:
    sources = ["step" + ".a" * 20 + " == 1", " + ".join(["1"] * 20) + " == 20", "!" * 20 + "true",
               "(" * 12 + " + ".join(["1"] * 10) + ")" * 12 + " == 10",
               " && ".join(["step.a.b.c == 1"] * 100),
               "true // a comment: ((((((((((((((((((((((((( is not nesting"]
    for name in ENGINES:
        cel = create_engine(name)
        for source in sources:
            cel.compile(source)


def test_celpy_never_lets_a_recursion_error_escape() -> None:
    # `compile_unchecked` skips the limits (for expressions the engine builds itself).
    with pytest.raises(CelCompileError, match="nested too deeply"):
        create_engine("celpy").compile_unchecked("-" * 3000 + "1 == 1")


def test_duplicate_rule_ids_across_packs_are_a_load_error(tmp_path: Path) -> None:
    rule = "rules:\n  - id: same\n    when: 'true'\n    tier: 1\n    reason: x\n"
    a = write_pack(tmp_path, "a", PACK_HEADER.format(name="a") + rule)
    b = write_pack(tmp_path, "b", PACK_HEADER.format(name="b") + rule)
    with pytest.raises(PackLoadError) as info:
        PolicyEngine.from_paths([b, a], "celpy", use_plugins=False)
    [problem] = info.value.problems
    assert problem.file.endswith("b.irgov.yaml") and (problem.line, problem.column) == (7, 9)
    assert f"rule id `same` is already used in `{a}`:7" in problem.message


def test_conflicting_constants_are_a_load_error(tmp_path: Path) -> None:
    a = write_pack(tmp_path, "a", PACK_HEADER.format(name="a") + "constants:\n  m: [x]\n")
    b = write_pack(tmp_path, "b", PACK_HEADER.format(name="b") + "constants:\n  m: [z]\n")
    with pytest.raises(PackLoadError, match="constant `m` differs"):
        PolicyEngine.from_paths([a, b], "celpy", use_plugins=False)


EXTRA_PACK = """vocabularies:
  actions: [custom.sync]
  providers: [custom.v1]
providerFamilies:
  custom: [custom]
escalation:
  threshold: 3
tiers:
  - id: custom-sync
    tier: 1
    reason: custom sync
    actions: [custom.sync]
rules:
  - id: extra-prod-dns
    when: step.action == "dns.update_records" && hasToken(step.resource, "prod")
    tier: 3
    reason: production dns
  - id: extra-audit-note
    when: step.action == "custom.sync"
    violation: {code: CUSTOM_NOTE, severity: WARNING, message: custom sync seen}
    mode: audit
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_composition_is_independent_of_order(tmp_path: Path, engine: str) -> None:
    extra = write_pack(tmp_path, "extra", PACK_HEADER.format(name="extra") + EXTRA_PACK)
    one = PolicyEngine.from_paths([BASELINE, extra], engine, use_plugins=False, budget_ms=60_000)
    two = PolicyEngine.from_paths([extra, BASELINE], engine, use_plugins=False, budget_ms=60_000)
    ir = make_ir({"action": "custom.sync", "provider": "custom.v1"},
                 {"action": "dns.update_records", "provider": "dns.route53", "resource": "zone/prod.example"})
    a, b = one.evaluate(ir).to_dict(), two.evaluate(ir).to_dict()
    for d in (a, b):
        d.pop("evaluated_at"), d.pop("duration_us")
    assert a == b
    # the united vocabulary accepts the extra action; the strictest threshold (2) applies
    assert a["status"] == "ESCALATE" and a["risk_tier"] == 3
    assert [p["name"] for p in a["packs"]] == ["baseline", "extra"]
    assert {h["rule"] for h in a["steps"][1]["hits"]} == {"dns-or-module-change", "extra-prod-dns",
                                                          "production-resource"}
    # the audit-mode warning is reported but changes nothing
    assert a["violations"] == [{"step_index": 0, "code": "CUSTOM_NOTE", "message": "custom sync seen",
                                "severity": "WARNING", "pack": "extra", "rule": "extra-audit-note",
                                "mode": "audit"}]
