"""`irgov test`: policy test files, their strict loading, expectations, coverage and outputs."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main
from irgov_policy.errors import PolicyTestLoadError
from irgov_policy.policy import DEFAULT_BUDGET_MS
from irgov_policy.policy.policytest import load_policy_test, parse_policy_test, policytest_schema
from irgov_policy.policy.testing_runner import POLICY_TEST_BUDGET_MS, run_policy_tests

from .conftest import BASELINE, POLICIES, REPO

IRGOV = Path(sys.executable).with_name("irgov")

HEAD = f"""apiVersion: irgov.dev/v1
kind: PolicyTest
metadata: {{name: sample}}
packs: ["{BASELINE}"]
defaults:
  ir: {{tenant_id: t}}
  step: {{action: course.create, provider: course_factory.v1, resource: r, idempotency_key: k}}
cases:
"""


def write(tmp_path: Path, body: str, name: str = "sample") -> Path:
    path = tmp_path / f"{name}.irgov-test.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["test", *args])
    return result.exit_code, result.stdout, result.stderr


def test_shipped_policy_tests_pass_with_full_rule_coverage() -> None:
    """The acceptance command, run as a user would: a real process in the repository."""
    done = subprocess.run([str(IRGOV), "test", "policies/", "--coverage", "--fail-under", "100"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rule coverage: 17/17 (100.0%)" in done.stdout
    assert "0 failed" in done.stdout


def test_shipped_policy_tests_pass_on_every_engine() -> None:
    code, out, _ = invoke(str(POLICIES), "--engine", "all", "--format", "json", "--coverage")
    assert code == 0, out
    data = json.loads(out)
    assert {r["engine"] for r in data["results"]} == {"celpy", "cel-cpp"}
    assert data["summary"]["failed"] == 0 and data["summary"]["coverage_percent"] == 100.0
    assert all(item["hits"] > 0 for item in data["coverage"])


def test_failing_cases_exit_2_and_say_why(tmp_path: Path) -> None:
    path = write(tmp_path, """  - name: catalog is production
    ir: {steps: [{resource: product-catalog}]}
    expect: {status: ESCALATE, hits: [production-resource]}
  - name: exact violations
    ir: {steps: [{action: nope.x, budget_cents: -1}]}
    expect: {violations: [{code: UNKNOWN_ACTION, step: 1}]}
  - name: passes
    ir: {steps: [{resource: prod}]}
    expect: {status: ESCALATE, tier: 2, steps: [{index: 0, hits: [production-resource], notHits: [bulk-operation]}]}
""")
    code, out, _ = invoke(str(path))
    assert code == 2
    assert f"FAIL catalog is production  ({path}:9)" in out
    assert "- status is `PASS`, expected `ESCALATE`" in out
    assert "- rule `production-resource` did not fire" in out
    assert "- expected violation `UNKNOWN_ACTION` at step 1 was not reported" in out
    assert "- unexpected violation `UNKNOWN_ACTION` at step 0: unknown action `nope.x`" in out
    assert "- unexpected violation `NEGATIVE_BUDGET` at step 0: budget_cents is negative" in out
    assert "2 passed, 4 failed (6 cases)" in out  # every case on both engines


def test_not_hits_catch_a_false_positive(tmp_path: Path) -> None:
    path = write(tmp_path, """  - name: prod is not a false positive
    ir: {steps: [{resource: "site:prod"}]}
    expect: {notHits: [production-resource]}
""")
    code, out, _ = invoke(str(path))
    assert code == 2
    assert "- rule `production-resource` fired: targets production (resource)" in out


def test_coverage_under_the_bar_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, """  - name: one rule
    ir: {steps: [{resource: prod}]}
    expect: {status: ESCALATE}
""")
    code, out, err = invoke(str(path), "--fail-under", "100")
    assert code == 2
    assert "rule coverage: 2/17 (11.8%)" in out
    assert f"{BASELINE}:" in out and "rule `negative-budget` of pack `baseline` never fired" in out
    assert "vocabulary check `vocabularies.actions` never fired" in out
    assert "rule coverage 11.8% is under the required 100%" in err
    code, _, _ = invoke(str(path), "--fail-under", "11")
    assert code == 0


def test_junit_and_json_outputs(tmp_path: Path) -> None:
    path = write(tmp_path, """  - name: good
    ir: {steps: [{}]}
    expect: {status: PASS}
  - name: bad
    ir: {steps: [{}]}
    expect: {status: REJECT}
""")
    code, out, _ = invoke(str(path), "--format", "junit", "--engine", "all", "--coverage")
    assert code == 2
    root = ET.fromstring(out)
    assert root.tag == "testsuites" and root.get("tests") == "4" and root.get("failures") == "2"
    suites = root.findall("testsuite")
    assert sorted(s.get("name") for s in suites) == ["sample [cel-cpp]", "sample [celpy]"]
    for suite in suites:
        cases = suite.findall("testcase")
        assert [c.get("name") for c in cases] == ["good", "bad"]
        assert cases[1].find("failure").get("message") == "status is `PASS`, expected `REJECT`"  # type: ignore[union-attr]
        assert cases[0].find("failure") is None
        assert suite.find("properties/property").get("name") == "rule_coverage_percent"  # type: ignore[union-attr]
    code, out, _ = invoke(str(path), "--format", "json")
    data = json.loads(out)
    assert data["summary"] == {"cases": 4, "passed": 2, "failed": 2, "rules": 17, "rules_hit": 1,
                               "coverage_percent": 5.88}
    assert "coverage" not in data
    assert data["results"][1]["failures"][0] == "status is `PASS`, expected `REJECT`"


@pytest.mark.parametrize("body,where,message", [
    ("  - name: a\n    ir: {steps: [{}]}\n    expect: {status: PASS}\n    expect: {tier: 0}\n",
     (12, 5), "duplicate key `expect` (first defined at line 11)"),
    ("  - name: a\n    ir: {steps: [{}]}\n    expect: {status: pass}\n",
     (11, 22), "`cases/0/expect/status`: must be one of `PASS`, `ESCALATE`, `REJECT`"),
    ("  - name: a\n    ir: {steps: [{}]}\n    expect: {stauts: PASS}\n",
     (11, 14), "`cases/0/expect`: unknown field `stauts`"),
    ("  - name: a\n    irFile: missing.json\n    expect: {status: PASS}\n",
     (10, 13), "cannot read ir file `missing.json`: no such file or directory"),
    ("  - name: a\n    ir: {steps: [{}]}\n    irFile: x.json\n    expect: {status: PASS}\n",
     (9, 5), "`cases/0`: a case has either `ir` or `irFile`, not both nor neither"),
    ("  - name: a\n    ir: {steps: [{}]}\n    expect: {}\n",
     (11, 13), "`cases/0/expect`: expects nothing: give at least one expectation"),
    ("  - name: a\n    ir: {steps: [{}]}\n    expect: {status: PASS}\n  - name: a\n    ir: {steps: [{}]}\n"
     "    expect: {status: PASS}\n", (12, 11), "duplicate case name `a` (first used at line 9)"),
    ("  - name: a\n    ir: {steps: [{enabled: on}]}\n    expect: {status: PASS}\n",
     (10, 28), "ambiguous value `on`"),
])
def test_load_errors_exit_1_with_positions(tmp_path: Path, body: str, where: tuple[int, int], message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(PolicyTestLoadError) as caught:
        load_policy_test(path)
    first = caught.value.problems[0]
    assert (first.line, first.column) == where and first.message.startswith(message), str(first)
    code, out, err = invoke(str(path))
    assert code == 1 and out == ""
    assert f"{path}:{where[0]}:{where[1]}: {message}" in err
    assert "problem(s) in policy tests" in err


def test_missing_pack_and_broken_pack(tmp_path: Path) -> None:
    text = HEAD.replace(str(BASELINE), "nope.irgov.yaml") + "  - name: a\n    ir: {steps: [{}]}\n    expect: {status: PASS}\n"
    path = tmp_path / "x.irgov-test.yaml"
    path.write_text(text, encoding="utf-8")
    code, _, err = invoke(str(path))
    assert code == 1 and f"{path}:4:9: rule pack `nope.irgov.yaml` does not exist" in err
    pack = tmp_path / "nope.irgov.yaml"
    pack.write_text("apiVersion: irgov.dev/v1\nkind: RulePack\nmetadata: {name: p, version: '1'}\nrules:\n"
                    "  - id: r\n    when: step.resource ==\n    tier: 1\n    reason: x\n", encoding="utf-8")
    code, _, err = invoke(str(path))
    assert code == 1 and f"{pack}:6:27: rule `r`: syntax error" in err and "problem(s) in rule packs" in err


def test_usage_errors(tmp_path: Path) -> None:
    code, _, err = invoke(str(tmp_path))
    assert code == 1 and "no policy tests (`*.irgov-test.yaml`)" in err
    code, _, err = invoke(str(tmp_path / "absent"))
    assert code == 1 and "absent:1:1: no such file or directory" in err


def test_defaults_merge_shallowly_and_ir_files_are_read_as_bytes(tmp_path: Path) -> None:
    (tmp_path / "ir.json").write_text('{"tenant_id": "t", "tenant_id": "u", "steps": []}', encoding="utf-8")
    path = write(tmp_path, """  - name: inline
    ir: {request_id: r1, steps: [{params: {a: 1}}, {resource: other, idempotency_key: null}]}
    expect: {status: REJECT}
  - name: file
    irFile: ir.json
    expect: {violations: [INVALID_IR]}
""")
    suite = parse_policy_test(path.read_bytes(), str(path))
    inline, from_file = suite.cases
    assert inline.ir == {"tenant_id": "t", "request_id": "r1", "steps": [
        {"action": "course.create", "provider": "course_factory.v1", "resource": "r", "idempotency_key": "k",
         "params": {"a": 1}},
        {"action": "course.create", "provider": "course_factory.v1", "resource": "other", "idempotency_key": None}]}
    assert from_file.ir == (tmp_path / "ir.json").read_bytes()
    run = run_policy_tests([suite], ["celpy"])
    assert [r.passed for r in run.results] == [True, True]
    assert run.results[1].status == "REJECT"


def test_schema_command_prints_the_policy_test_schema() -> None:
    result = CliRunner().invoke(main, ["schema", "policytest"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == policytest_schema()
    assert policytest_schema()["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_policy_tests_run_with_a_generous_budget() -> None:
    # A case must not fail with BUDGET_EXCEEDED because CI is busy: the runner's wall-clock
    # backstop is longer than the one of `irgov check` (the rule-evaluation budget is the same).
    default = inspect.signature(run_policy_tests).parameters["budget_ms"].default
    assert default == POLICY_TEST_BUDGET_MS and default >= 6 * DEFAULT_BUDGET_MS


def test_every_installed_engine_runs_by_default_and_a_disagreement_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pack = tmp_path / "region.irgov.yaml"
    pack.write_text("""apiVersion: irgov.dev/v1
kind: RulePack
metadata: {name: region, version: "1"}
rules:
  - id: eu-region
    when: has(step.constraints.region) && step.constraints.region == "eu"
    tier: 1
    reason: an eu region
""", encoding="utf-8")
    path = write(tmp_path, """  - name: no region
    ir: {steps: [{}]}
    expect: {status: PASS}
""").read_text(encoding="utf-8").replace(f'packs: ["{BASELINE}"]', f'packs: ["{BASELINE}", "{pack}"]')
    (tmp_path / "sample.irgov-test.yaml").write_text(path, encoding="utf-8")
    code, out, err = invoke(str(tmp_path), "--format", "json")
    assert code == 0, out + err
    assert {r["engine"] for r in json.loads(out)["results"]} == {"celpy", "cel-cpp"}
    # Put back celpy's own `has()` and `&&` (the disagreement this project fixed): the case
    # now fails on both engines, naming each result.
    import celpy.celtypes

    from irgov_policy.policy.cel import celpy_semantics
    monkeypatch.setattr(celpy_semantics, "logical_and", celpy.celtypes.logical_and)
    monkeypatch.setattr(celpy_semantics, "has", lambda target, name: name in target)
    code, out, _ = invoke(str(tmp_path))
    assert code == 2
    assert out.count("engines disagree: cel-cpp PASS tier 0 vs celpy REJECT tier 0 (RULE_ERROR)") == 2, out
