"""The decision log's lines and redaction, and shadow packs' divergence counting."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from irgov_policy.errors import ConfigError
from irgov_policy.policy.active import PackSetHolder
from irgov_policy.policy.decision_log import REDACTED, DecisionLog
from irgov_policy.policy.evaluator import PolicyEngine
from irgov_policy.policy.shadow import ShadowEvaluator

from .conftest import BASELINE, copy_pack_folder

ROOT = Path(__file__).resolve().parents[2]
IR = {"tenant_id": "t1", "request_id": "r1", "steps": [
    {"action": "dns.update_records", "provider": "dns.cloudflare", "resource": "dns:example.com",
     "params": {"record": "www", "password": "hunter2"}, "idempotency_key": "k1"}]}


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine.from_paths([BASELINE], budget_ms=60_000)


@pytest.mark.parametrize("mode", ["none", "params", "ir"])
def test_each_line_is_the_decision_and_the_ir_as_redacted(tmp_path: Path, engine: PolicyEngine, mode: str) -> None:
    log = DecisionLog(tmp_path / "logs" / "decisions.jsonl", redact=mode)
    decision = engine.evaluate(IR)
    assert log.record(decision, IR, submitted_by="pipeline", packs_digest="sha256:" + "a" * 64)
    assert log.record(decision, json.dumps(IR).encode(), submitted_by="pipeline")
    log.close()
    path = tmp_path / "logs" / "decisions.jsonl"
    assert path.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(x) for x in path.read_text("utf-8").splitlines()]
    assert len(lines) == 2 and log.status()["written"] == 2
    assert lines[0]["decision_id"] != lines[1]["decision_id"]  # UUIDv7, time-ordered like event ids
    for line in lines:
        assert line["decision"] == decision.to_dict()
        assert line["redact"] == mode and line["submitted_by"] == "pipeline"
    ir = lines[0]["ir"]
    if mode == "none":
        assert ir == IR
    elif mode == "params":
        assert ir["steps"][0]["params"] == {"record": REDACTED, "password": REDACTED}
        assert {k: v for k, v in ir["steps"][0].items() if k != "params"} == {
            k: v for k, v in IR["steps"][0].items() if k != "params"}  # type: ignore[attr-defined]
        assert "hunter2" not in path.read_text("utf-8")
    else:
        assert ir is None and "hunter2" not in path.read_text("utf-8")
    assert lines[1]["ir"] == lines[0]["ir"]


def test_a_logged_ir_replays_to_the_same_decision(tmp_path: Path, engine: PolicyEngine) -> None:
    log = DecisionLog(tmp_path / "d.jsonl", redact="none")
    original = engine.evaluate(IR)
    log.record(original, IR)
    line = json.loads((tmp_path / "d.jsonl").read_text("utf-8"))
    again = engine.evaluate(line["ir"])
    assert (again.status, again.risk_tier, again.ir_hash) == (original.status, original.risk_tier, original.ir_hash)


def test_an_invalid_ir_is_logged_without_ir(tmp_path: Path, engine: PolicyEngine) -> None:
    log = DecisionLog(tmp_path / "d.jsonl", redact="none")
    decision = engine.evaluate(b'{"tenant_id": "t", "tenant_id": "u"}')
    assert decision.status == "REJECT"
    log.record(decision, b'{"tenant_id": "t", "tenant_id": "u"}')
    assert json.loads((tmp_path / "d.jsonl").read_text("utf-8"))["ir"] is None


def test_a_failing_log_never_raises(tmp_path: Path, engine: PolicyEngine, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    log = DecisionLog(blocker / "d.jsonl")  # a directory that cannot exist
    with caplog.at_level(logging.ERROR):
        assert log.record(engine.evaluate(IR), IR) is False
    assert log.status()["failed"] == 1
    assert any("writing the decision log" in r.getMessage() for r in caplog.records)


def test_an_unknown_redaction_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="`decision_log_redact` must be one of `none`, `params`, `ir`, not `all`"):
        DecisionLog(tmp_path / "d.jsonl", redact="all")


def test_shadow_counts_and_logs_divergences(tmp_path: Path, engine: PolicyEngine,
                                            caplog: pytest.LogCaptureFixture) -> None:
    candidate_dir = copy_pack_folder(tmp_path / "candidate")
    pack = candidate_dir / "baseline.irgov.yaml"
    text = pack.read_text("utf-8")
    assert "    - dns.update_records\n" in text
    pack.write_text(text.replace("    - dns.update_records\n", "", 1), "utf-8")  # the candidate forgets an action

    def load() -> PolicyEngine:
        return PolicyEngine.from_paths([candidate_dir], budget_ms=60_000)

    shadow = ShadowEvaluator(PackSetHolder(load(), load))
    same = {**IR, "steps": [{**IR["steps"][0], "action": "dns.create_zone"}]}  # type: ignore[dict-item]
    with caplog.at_level(logging.INFO, logger="irgov_policy.audit.shadow"):
        kept = shadow.compare(same, engine.evaluate(same))
        real = engine.evaluate(IR)
        changed = shadow.compare(IR, real)
    assert kept is not None and kept["diverged"] is False
    assert changed is not None and changed["diverged"] is True and changed["status"] == "REJECT"
    assert changed["violations"] == ["UNKNOWN_ACTION"]
    assert real.status == "ESCALATE"  # the active set's decision is untouched
    status = shadow.status()
    assert (status["decisions"], status["divergences"]) == (2, 1)
    assert status["last_divergence"]["active"] == "ESCALATE" and status["last_divergence"]["shadow"] == "REJECT"
    [line] = [r.getMessage() for r in caplog.records if r.name == "irgov_policy.audit.shadow"]
    assert f"diverge on ir {real.ir_hash} of tenant t1: ESCALATE tier" in line and "-> REJECT tier" in line


def test_a_token_in_an_ir_never_reaches_the_log(tmp_path: Path, engine: PolicyEngine) -> None:
    from irgov_policy.text_rules import TOKEN_PREFIX

    token = TOKEN_PREFIX + "A" * 40
    leaked = {**IR, "steps": [{**IR["steps"][0], "description": f"approved with {token}"}]}  # type: ignore[dict-item]
    log = DecisionLog(tmp_path / "d.jsonl", redact="none")
    log.record(engine.evaluate(leaked), leaked)
    text = (tmp_path / "d.jsonl").read_text("utf-8")
    assert token not in text and TOKEN_PREFIX + "<redacted>" in text
