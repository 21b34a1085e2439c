"""`irgov lint`: every problem at its exact file:line:col, errors exit 1, warnings alone exit 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main
from irgov_policy.policy.lint import constant_references, lint_paths

from .conftest import BASELINE

ENGINES = ["celpy", "cel-cpp"]

HEADER = """apiVersion: irgov.dev/v1
kind: RulePack
metadata:
  name: {name}
  version: "1"
"""

# Line numbers matter: the tests below point into this text.
BROKEN = HEADER.format(name="broken") + """constants:
  prod_envs: [production]
rules:
  - id: broken-syntax
    when: >-
      step.action == "deploy.website" &&
      step.resource.startsWith("x") &&
      step.params.size() > > 1
    tier: 1
    reason: x
  - id: undeclared
    when: |
      step.action == "deploy.website"
        && stepp.resource == "x"
    tier: 1
    reason: x
  - id: bad-constant
    when: |-
      step.action == "deploy.api" &&
        step.resource in constants.prod_env
    tier: 2
    reason: x
  - id: good-constant
    when: step.resource in constants.prod_envs
    tier: 2
    reason: x
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.irgov.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def lines(report_problems: list[object]) -> list[str]:
    return [str(p) for p in report_problems]


@pytest.mark.parametrize("engine", ENGINES)
def test_errors_point_at_the_exact_line_and_column(tmp_path: Path, engine: str) -> None:
    path = write(tmp_path, "broken", BROKEN)
    report = lint_paths([path], engines=[engine])
    found = {(p.line, p.column, p.severity): p.message for p in report.problems}
    # `step.params.size() > > 1`: the second `>` (line 13, column 28)
    assert found[(13, 28, "error")].startswith("rule `broken-syntax`: ")
    # `stepp` on the second line of a literal block (line 19, column 12)
    assert "undeclared reference to `stepp" in found[(19, 12, "error")]
    # `prod_env` after `constants.` on the second line of a stripped literal block
    assert found[(25, 36, "error")] == "rule `bad-constant`: unknown constant `prod_env`: did you mean `prod_envs`?"
    assert len(report.errors) == 3, lines(report.problems)
    assert report.warnings == []


def test_lint_of_the_shipped_policies_is_clean() -> None:
    report = lint_paths([BASELINE.parent])
    assert report.files == [str(BASELINE)]
    assert report.problems == []


def test_semantic_checks(tmp_path: Path) -> None:
    pack = write(tmp_path, "semantic", HEADER.format(name="semantic") + """constants:
  unused_list: [a]
  ghost_actions: [ghost.one, ghost.two]
  some_actions: [deploy.api, ghost.three]
tiers:
  - id: ghost-tier
    tier: 2
    reason: ghost
    actions: [ghost.action]
  - id: half-known
    tier: 1
    reason: partly known
    actions: [deploy.api, ghost.four]
    prefixes: [nothing.]
rules:
  - id: never-by-match
    match: {actions: ghost_actions}
    tier: 2
    reason: x
  - id: partly-by-match
    match: {actions: some_actions}
    tier: 2
    reason: x
  - id: never-by-when
    when: step.resource == "x" && step.action in ["ghost.a", 'ghost.b']
    tier: 2
    reason: x
  - id: maybe-by-when
    when: step.action == "ghost.c" || step.action == "deploy.api"
    tier: 2
    reason: x
  - id: in-a-string
    when: step.resource == "constants.nope"
    tier: 1
    reason: x
""")
    report = lint_paths([pack], engines=["celpy"])
    got = {(p.line, p.column, p.severity, p.message) for p in report.problems}
    assert got == {
        (7, 16, "warning", "constant `unused_list` is never used"),
        (11, 9, "error", "tier entry `ghost-tier` can never apply: none of its actions or prefixes is in a vocabulary"),
        (18, 27, "warning", "tier entry `half-known`: action `ghost.four` is in no vocabulary"),
        (19, 16, "warning", "tier entry `half-known`: prefix `nothing.` matches no action of a vocabulary"),
        (22, 22, "error", "rule `never-by-match` can never fire: no action of `ghost_actions` is in a vocabulary"),
        (26, 22, "warning", "rule `partly-by-match`: action `ghost.three` of `some_actions` is in no vocabulary"),
        (30, 35, "error", "rule `never-by-when` can never fire: `ghost.a`, `ghost.b` is in no vocabulary"),
        (34, 26, "warning", "rule `maybe-by-when`: action `ghost.c` is in no vocabulary"),
    }


def test_without_the_baseline_vocabulary_a_pack_declares_its_own(tmp_path: Path) -> None:
    pack = write(tmp_path, "own", HEADER.format(name="own") + """vocabularies:
  actions: [mine.run]
tiers:
  - id: mine
    tier: 1
    reason: mine
    actions: [mine.run]
  - id: deploys
    tier: 1
    reason: deploys
    prefixes: [deploy.]
""")
    assert lint_paths([pack]).problems == []
    report = lint_paths([pack], baseline_vocabulary=False)
    assert [p.message for p in report.errors] == [
        "tier entry `deploys` can never apply: none of its actions or prefixes is in a vocabulary"]


def test_duplicates_and_conflicts_across_packs(tmp_path: Path) -> None:
    body = """constants:
  markers: [{marker}]
rules:
  - id: shared-id
    when: hasAnyToken(step.resource, constants.markers)
    tier: 1
    reason: x
"""
    first = write(tmp_path, "a", HEADER.format(name="a") + body.format(marker="prod"))
    second = write(tmp_path, "b", HEADER.format(name="a") + body.format(marker="live"))
    report = lint_paths([first, second])
    assert lines(report.errors) == [
        f"{second}:4:9: pack `a` is also defined in `{first}`",
        f"{second}:7:12: constant `markers` differs from its definition in `{first}`:7",
        f"{second}:9:9: rule id `shared-id` is already used in `{first}`:9",
    ]


def test_schema_and_yaml_problems_are_reported_with_positions(tmp_path: Path) -> None:
    pack = write(tmp_path, "schema", HEADER.format(name="schema") + """rules:
  - id: too-high
    when: "true"
    tier: 4
    reason: x
  - id: ok
    when: "true"
    tier: 1
    reason: x
    severity: no
""")
    report = lint_paths([pack])
    assert [(p.line, p.column) for p in report.errors] == [(15, 15)]
    assert "ambiguous value `no`" in report.errors[0].message
    pack.write_text(pack.read_text().replace("    severity: no\n", ""), encoding="utf-8")
    report = lint_paths([pack])
    assert lines(report.errors) == [f"{pack}:9:11: `rules/0/tier`: 4 is greater than the maximum of 3"]


def test_constant_references_skip_strings() -> None:
    source = 'constants.a + "constants.b" + constants["c"] + constants . d + r\'constants.e\''
    assert [name for name, _ in constant_references(source)] == ["a", "c", "d"]


def test_cli_text_json_and_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    broken = write(tmp_path, "broken", BROKEN)
    result = runner.invoke(main, ["lint", "--engine", "cel-cpp", str(broken)])
    assert result.exit_code == 1
    assert f"{broken}:25:36: rule `bad-constant`: unknown constant `prod_env`: did you mean `prod_envs`?" in result.stdout.splitlines()
    result = runner.invoke(main, ["lint", "--format", "json", str(broken)])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["errors"] == 3 and data["warnings"] == 0
    assert {"file": str(broken), "line": 25, "column": 36, "severity": "error",
            "message": "rule `bad-constant`: unknown constant `prod_env`: did you mean `prod_envs`?"} in data["problems"]
    # warnings alone exit 0
    warn = write(tmp_path, "warn", HEADER.format(name="warn") + "constants:\n  spare: [x]\n")
    result = runner.invoke(main, ["lint", str(warn)])
    assert result.exit_code == 0
    assert result.stdout == f"{warn}:7:10: warning: constant `spare` is never used\n"
    result = runner.invoke(main, ["lint", str(tmp_path / "missing.irgov.yaml")])
    assert result.exit_code == 1
    assert "missing.irgov.yaml:1:1: no such file or directory" in result.stdout


HELP = HEADER.format(name="help") + """constants:
  prod_envs: [prod]
rules:
  - id: method-case
    when: step.resource.startswith("x")
    tier: 1
    reason: x
  - id: field-typo
    when: step.resorce == "x"
    tier: 1
    reason: x
  - id: constant-typo
    when: hasAnyToken(step.resource, constants.prod_env)
    tier: 1
    reason: x
  - id: function-typo
    when: hasAnyTokens(step.resource, constants.prod_envs)
    tier: 1
    reason: x
  - id: unguarded
    when: step.constraints.region == "us-east-1"
    tier: 1
    reason: x
  - id: guarded
    when: >-
      has(step.constraints.region) && step.constraints.region == "us-east-1"
      || "zone" in step.params && step.params.zone == "a" || step.params.exists(k, k == "b")
    tier: 1
    reason: x
  - id: match-typo
    match: {tokens: {fields: [resource], anyOf: prod_env}}
    tier: 1
    reason: x
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_lint_suggests_near_names_and_warns_on_unguarded_optional_keys(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "help.irgov.yaml"
    path.write_text(HELP, encoding="utf-8")
    report = lint_paths([path], engines=[engine], baseline_vocabulary=False)
    messages = [f"{p.line}:{p.column}: {p.severity}: {p.message}" for p in report.problems]
    function = "function " if engine == "celpy" else ""
    assert messages == [
        f"10:25: error: rule `method-case`: undeclared reference to {function}`startswith`: did you mean `startsWith`?",
        "14:16: error: rule `field-typo`: unknown field `step.resorce`: did you mean `resource`?",
        "18:48: error: rule `constant-typo`: unknown constant `prod_env`: did you mean `prod_envs`?",
        f"22:11: error: rule `function-typo`: undeclared reference to {function}`hasAnyTokens`: "
        "did you mean `hasAnyToken`?",
        "26:28: warning: rule `unguarded`: `step.constraints.region` is an error on an ir without the key "
        "`region` (a `RULE_ERROR` reject): guard it with `has(step.constraints.region)`",
        "36:49: error: rule `match-typo`: unknown constant `prod_env`: did you mean `prod_envs`?",
    ], messages


def test_the_field_lists_of_lint_are_the_evaluator_variables() -> None:
    from irgov_policy.model import parse_ir
    from irgov_policy.policy.evaluator import ir_variables, step_variables
    from irgov_policy.policy.lint_help import IR_FIELDS, STEP_FIELDS

    ir = parse_ir({"tenant_id": "t", "steps": [{"action": "a", "provider": "p", "resource": "r",
                                                 "idempotency_key": "k"}]})
    assert set(step_variables(ir.steps[0], 0)) == set(STEP_FIELDS)
    assert set(ir_variables(ir, True)) == set(IR_FIELDS)


def test_the_shipped_packs_lint_without_help() -> None:
    report = lint_paths([BASELINE], baseline_vocabulary=False)
    assert report.problems == []
