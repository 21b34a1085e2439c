from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main
from irgov_policy.policy import baseline_pack_path

from .conftest import PACK_HEADER, REPO, make_ir, write_pack

EXAMPLES = REPO / "examples"


@pytest.fixture(autouse=True)
def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the CLI event bus keeps its outbox under the working directory
    monkeypatch.chdir(tmp_path)


def run(*args: str, stdin: str | bytes | None = None) -> tuple[int, str, str]:
    if args[0] == "check" and "--budget-ms" not in args:
        # a loaded CI machine must not turn a decision into BUDGET_EXCEEDED (see test_budget_option)
        args = (*args, "--budget-ms", "60000")
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name,code,status", [("pass", 0, "PASS"), ("escalate", 3, "ESCALATE"),
                                              ("reject", 4, "REJECT")])
@pytest.mark.parametrize("engine", ["auto", "celpy", "cel-cpp"])
def test_examples_exit_codes(name: str, code: int, status: str, engine: str) -> None:
    exit_code, out, _ = run("check", str(EXAMPLES / f"{name}.json"), "--engine", engine)
    assert exit_code == code
    assert out.startswith(f"{status} tier ")


def test_explain_shows_hits_and_violations_with_rules() -> None:
    _, out, _ = run("check", str(EXAMPLES / "reject.json"), "--explain")
    assert "ERROR step 0: UNKNOWN_ACTION: unknown action `custom.delete` [-/vocabularies.actions]" in out
    assert "ERROR step 1: NEGATIVE_BUDGET: budget_cents is negative [baseline/negative-budget]" in out
    assert "tier 2 changes dns or installs an odoo module [baseline/dns-or-module-change]" in out
    _, out, _ = run("check", str(EXAMPLES / "escalate.json"), "--explain")
    assert "targets production (environment) [baseline/production-environment]" in out


def test_json_output_is_the_decision() -> None:
    code, out, _ = run("check", str(EXAMPLES / "escalate.json"), "--format", "json")
    decision = json.loads(out)
    assert code == 3 and decision["status"] == "ESCALATE" and decision["requires_approval"] is True
    assert set(decision) == {"status", "risk_tier", "requires_approval", "ir_hash", "tenant_id", "request_id",
                             "step_count", "steps", "violations", "high_risk_steps", "packs", "engine",
                             "evaluated_at", "duration_us", "notes"}
    assert decision["packs"][0]["name"] == "baseline"
    assert decision["evaluated_at"].endswith("Z")


def test_stdin_and_invalid_input() -> None:
    code, out, _ = run("check", "-", stdin=(EXAMPLES / "pass.json").read_bytes())
    assert code == 0
    code, out, _ = run("check", "-", stdin=b'{"tenant_id": "t", "steps": [{"action": 1}]}')
    assert code == 4 and "INVALID_IR: /steps/0" in out


def test_jsonl_decides_every_line() -> None:
    lines = "\n".join(json.dumps(json.loads((EXAMPLES / f"{n}.json").read_text())) for n in ("pass", "reject"))
    code, out, _ = run("check", "-", "--format", "jsonl", stdin=lines + "\n{broken\n")
    decisions = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [d["status"] for d in decisions] == ["PASS", "REJECT", "REJECT"]
    assert decisions[2]["violations"][0]["code"] == "INVALID_IR"
    # detected without --format jsonl too, where the exit code is the worst decision's
    code, out, _ = run("check", "-", stdin=lines)
    assert code == 4 and out.startswith("line 1: PASS")


def test_several_irs_without_jsonl_format_exit_with_the_worst_decision() -> None:
    # A gate written for one IR (`irgov check plan.json && run`) must not pass a file whose
    # third line is a REJECT: that exit code is for `--format jsonl` batch audits only.
    irs = {n: json.dumps(json.loads((EXAMPLES / f"{n}.json").read_text())) for n in ("pass", "escalate", "reject")}
    assert run("check", "-", stdin=f"{irs['pass']}\n{irs['pass']}\n")[0] == 0
    assert run("check", "-", stdin=f"{irs['pass']}\n{irs['escalate']}\n")[0] == 3
    code, out, _ = run("check", "-", "--format", "json", stdin=f"{irs['pass']}\n{irs['reject']}\n{irs['escalate']}")
    assert code == 4 and [json.loads(line)["status"] for line in out.splitlines()] == ["PASS", "REJECT", "ESCALATE"]


def test_a_batch_whose_first_line_is_broken_is_still_decided_line_by_line() -> None:
    lines = [json.dumps(json.loads((EXAMPLES / f"{n}.json").read_text())) for n in ("pass", "escalate")]
    stdin = "{broken\n\n" + "\n".join(lines) + "\n"
    code, out, _ = run("check", "-", stdin=stdin)
    assert code == 4
    # labels are the input's own line numbers (blank lines count)
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("line ")] == ["line 1", "line 3",
                                                                                              "line 4"]
    code, out, _ = run("check", "-", "--format", "jsonl", stdin=stdin)
    assert code == 0 and [json.loads(line)["status"] for line in out.splitlines()] == ["REJECT", "PASS", "ESCALATE"]
    # a broken pretty-printed document stays one document
    pretty = json.dumps(json.loads(lines[1]), indent=2)
    broken = pretty.replace(",", "", 1)
    code, out, _ = run("check", "-", stdin=broken)
    assert code == 4 and out.startswith("REJECT") and out.count("REJECT") == 1 and "INVALID_IR" in out


def test_an_empty_batch_is_an_error_not_a_pass() -> None:
    code, out, err = run("check", "-", "--format", "jsonl", stdin="\n  \n")
    assert code == 1 and out == "" and err == "irgov: error: no ir in the input: json lines mode expects one ir per line\n"


def test_budget_option() -> None:
    code, out, _ = run("check", str(EXAMPLES / "pass.json"), "--budget-ms", "0.000001")
    assert code == 4 and "BUDGET_EXCEEDED" in out
    code, _, err = run("check", str(EXAMPLES / "pass.json"), "--budget-ms", "0")
    assert code == 1 and "--budget-ms" in err


def test_usage_and_io_errors_exit_1(tmp_path: Path) -> None:
    code, _, err = run("check", str(tmp_path / "missing.json"))
    assert code == 1 and "irgov: error: cannot read" in err
    broken = write_pack(tmp_path, "broken", PACK_HEADER.format(name="broken")
                        + "rules:\n  - id: r\n    when: step.action ==\n    tier: 1\n    reason: x\n")
    code, _, err = run("check", str(EXAMPLES / "pass.json"), "--packs", str(broken))
    assert code == 1
    assert err.startswith(f"{broken}:8:")
    code, _, _ = run("check", "--engine", "nope")
    assert code == 1  # a usage error: one line, exit 1 as documented


def test_a_pack_directory_without_packs_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "packs").mkdir()
    code, out, err = run("check", str(EXAMPLES / "pass.json"), "--packs", str(tmp_path / "packs"))
    assert code == 1 and out == ""
    assert err.splitlines() == [f"{tmp_path / 'packs'}:1:1: no rule packs (`*.irgov.yaml`) in this directory",
                                "irgov: error: 1 problem(s) in rule packs"]


def test_custom_packs_replace_the_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pack = write_pack(tmp_path, "tiny", PACK_HEADER.format(name="tiny") + (
        "vocabularies:\n  actions: [course.generate_outline]\n  providers: [course_factory.v1]\n"
        "providerFamilies:\n  course: [course_factory]\n"))
    ir = tmp_path / "ir.json"
    ir.write_text(json.dumps(make_ir()))
    code, out, _ = run("check", str(ir), "--packs", str(pack), "--format", "json")
    names = [p["name"] for p in json.loads(out)["packs"]]
    assert code == 0 and "tiny" in names and "baseline" not in names  # plugins' packs join, as in the kernel
    monkeypatch.setenv("IRGOV_PLUGIN_PACKS", "false")
    code, out, _ = run("check", str(ir), "--packs", str(pack), "--format", "json")
    assert code == 0 and [p["name"] for p in json.loads(out)["packs"]] == ["tiny"]


def test_schema_rulepack_prints_the_draft07_schema() -> None:
    code, out, _ = run("schema", "rulepack")
    assert code == 0 and json.loads(out)["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_terminal_control_characters_in_an_ir_are_shown_escaped(tmp_path: Path) -> None:
    # An IR could otherwise move the cursor and erase the REJECT line, or reorder text with a
    # bidirectional override, in the terminal of whoever reviews it.
    ir = make_ir({"action": "x\x1b[1A\x1b[2KPASS", "step_id": "s\u202e0"}, request_id="r\x1b]0;t\x07")
    code, out, _ = run("check", "-", "--explain", stdin=json.dumps(ir))
    assert code == 4
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "unknown action `x\\u001b[1A\\u001b[2KPASS`" in out
    assert "step 0 s\\u202e0 x\\u001b[1A" in out and "request r\\u001b]0;t\\u0007" in out
    # brackets of rule ids and reasons print as written, without markup escapes
    _, out, _ = run("check", str(EXAMPLES / "reject.json"), "--explain")
    assert "[-/vocabularies.actions]" in out and "\\[" not in out


def test_values_starting_with_a_boolean_lint_and_check_cleanly(tmp_path: Path) -> None:
    pack = write_pack(tmp_path, "trueish", PACK_HEADER.format(name="trueish").replace(
        'version: "1"', 'version: "1"\n  description: Trueish') + """rules:
  - id: r1
    when: true || step.action == "x"
    tier: 1
    reason: false positives are rare
""")
    code, out, err = run("lint", str(pack))
    assert code == 0, out + err
    ir = tmp_path / "ir.json"
    ir.write_text(json.dumps(make_ir()), encoding="utf-8")
    code, out, err = run("check", str(ir), "--packs", str(baseline_pack_path()), "--packs", str(pack), "--explain")
    assert "Traceback" not in out + err
    assert code == 0 and out.startswith("PASS tier ") and "false positives are rare" in out
