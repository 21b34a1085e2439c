"""`irgov replay` and `policy.replay`: the decisions a candidate pack set changes, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main
from irgov_policy.policy import PolicyEngine, baseline_pack_path
from irgov_policy.policy.replay import replay_lines

from .conftest import PACK_HEADER, REPO, write_pack

BATCH = REPO / "examples" / "batch.jsonl"

ONE_MORE_ACTION = PACK_HEADER.format(name="stricter") + """rules:
  - id: lessons-need-review
    when: step.action == "course.generate_lessons"
    tier: 2
    reason: generated lessons are reviewed before publishing
"""


@pytest.fixture(autouse=True)
def _workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["replay", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_pack_that_escalates_one_more_action_changes_exactly_its_decisions(tmp_path: Path) -> None:
    stricter = write_pack(tmp_path, "stricter", ONE_MORE_ACTION)
    code, out, err = run("--packs", str(baseline_pack_path()), "--packs", str(stricter),
                         "--against", str(baseline_pack_path()), str(BATCH))
    assert code == 2, out + err
    changed = [line for line in out.splitlines() if line.startswith("line ")]
    # Only the first IR generates lessons; the escalated and the rejected IRs keep their decisions.
    assert changed == ["line 1 request req_pass_001: PASS tier 0 -> ESCALATE tier 2  +stricter/lessons-need-review"]
    assert "3 IR(s) replayed, 1 decision(s) changed" in out
    assert "PASS" in out and "REJECT" in out  # the summary table lists every transition


def test_json_output_and_exit_0_when_nothing_changes(tmp_path: Path) -> None:
    stricter = write_pack(tmp_path, "stricter", ONE_MORE_ACTION)
    code, out, _ = run("--packs", str(baseline_pack_path()), "--packs", str(stricter),
                       "--against", str(baseline_pack_path()), "--format", "json", str(BATCH))
    assert code == 2
    report = json.loads(out)
    assert report["decided"] == 3 and report["changed"] == 1
    assert report["changes"][0]["old"] == {"status": "PASS", "tier": 0}
    assert report["changes"][0]["new"] == {"status": "ESCALATE", "tier": 2}
    assert report["changes"][0]["rules"] == ["+stricter/lessons-need-review"]
    assert {(s["from"], s["to"], s["count"]) for s in report["summary"]} == {
        ("PASS", "ESCALATE", 1), ("ESCALATE", "ESCALATE", 1), ("REJECT", "REJECT", 1)}
    assert [p["name"] for p in report["packs"]["new"]] == ["baseline", "stricter"]
    code, out, _ = run("--packs", str(baseline_pack_path()), "--against", str(baseline_pack_path()),
                       "--format", "json", str(BATCH))
    assert code == 0 and json.loads(out)["changed"] == 0


def test_a_rule_that_stops_firing_is_named_with_a_minus(tmp_path: Path) -> None:
    stricter = write_pack(tmp_path, "stricter", ONE_MORE_ACTION)
    current = PolicyEngine.from_paths([baseline_pack_path(), stricter], "celpy", use_plugins=False)
    new = PolicyEngine.from_paths([baseline_pack_path()], "celpy", use_plugins=False)
    lines = list(enumerate(BATCH.read_bytes().splitlines(), start=1))
    report = replay_lines(lines, current, new)
    [change] = report.changes
    assert (change.old_status, change.new_status, change.rules) == ("ESCALATE", "PASS",
                                                                     ("-stricter/lessons-need-review",))


def test_invalid_lines_are_decided_alike_and_load_errors_are_one_line(tmp_path: Path) -> None:
    irs = tmp_path / "irs.jsonl"
    irs.write_text("{not json}\n\n" + BATCH.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    code, out, _ = run("--packs", str(baseline_pack_path()), "--against", str(baseline_pack_path()), str(irs))
    assert code == 0 and "2 IR(s) replayed, 0 decision(s) changed" in out
    broken = write_pack(tmp_path, "broken", PACK_HEADER.format(name="broken") + "rules: 7\n")
    code, _, err = run("--packs", str(broken), str(irs))
    assert code == 1 and "problem(s) in the new rule packs" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    code, _, err = run("--packs", str(baseline_pack_path()), str(empty))
    assert code == 1 and "replay expects one ir per line" in err
