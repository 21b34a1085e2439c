"""`irgov events ...` and the CLI's own publishing: an outage drains back to zero pending."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main
from irgov_policy.events import EventBus, EventType
from irgov_policy.hashing import step_hash
from irgov_policy.model import load_ir

from .helpers import WebhookServer, seed_event


def _files(tmp_path: Path, tamper: bool) -> tuple[str, str]:
    doc = {"tenant_id": "tenant_c", "request_id": "req_c", "created_at": "2026-11-27T10:00:00Z",
           "steps": [{"action": "dns.update_records", "provider": "dns.hetzner", "resource": "zone/a",
                      "params": {}, "idempotency_key": "k0"}]}
    ir = load_ir(json.dumps(doc).encode())
    nodes = [{"ir_step_id": sid, "ir_step_hash": step_hash(s, "sha256")}
             for sid, s in zip(ir.step_ids(), ir.steps, strict=True)]
    if tamper:
        nodes[0]["ir_step_hash"] = "sha256:" + "0" * 64
    (tmp_path / "ir.json").write_text(json.dumps(doc))
    (tmp_path / "dag.json").write_text(json.dumps(nodes))
    return str(tmp_path / "ir.json"), str(tmp_path / "dag.json")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"IRGOV_OUTBOX": f"sqlite:///{tmp_path}/outbox.db", "IRGOV_EVENTS_FLUSH_TIMEOUT": "0.3",
            "IRGOV_CONFIG": ""}


def _status(runner: CliRunner, env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(main, ["events", "status", "--format", "json"], env=env)
    return result.exit_code, json.loads(result.output)


def test_an_outage_is_visible_in_status_and_drains_back_to_zero(tmp_path: Path, env: dict[str, str]) -> None:
    server = WebhookServer()  # down
    env["IRGOV_EVENT_SINKS"] = f"{server.url},jsonl://{tmp_path}/events.jsonl"
    runner = CliRunner()
    ir_file, dag_file = _files(tmp_path, tamper=True)
    # The webhook is down, so the command waits its whole flush timeout: long enough for the relay to
    # try the webhook and to serve the healthy sink on a loaded machine.
    diff = runner.invoke(main, ["diff", ir_file, dag_file], env={**env, "IRGOV_EVENTS_FLUSH_TIMEOUT": "1"})
    assert diff.exit_code == 1  # the audit fails on its own merits, not because of the sink
    assert "still pending" in diff.stderr and "stay in the outbox" in diff.stderr
    (line,) = (tmp_path / "events.jsonl").read_text().splitlines()  # the healthy sink got it before exit
    event_id = json.loads(line)["id"]
    assert json.loads(line)["type"] == EventType.DAG_DIFF_FAILED

    code, status = _status(runner, env)
    by_sink = {s["sink"]: s for s in status["sinks"]}
    assert code == 1 and status["pending"] == 1
    assert by_sink[server.url]["pending"] == 1 and by_sink[server.url]["failed_attempts"] >= 1
    assert by_sink[server.url]["oldest_pending_age_seconds"] >= 0

    server.start()
    try:
        deliver = runner.invoke(main, ["events", "deliver", "--timeout", "10"], env=env)
        assert deliver.exit_code == 0, deliver.output
        code, status = _status(runner, env)
        assert code == 0 and status["pending"] == 0
        assert server.ids() == [event_id]
        text = runner.invoke(main, ["events", "status"], env=env)
        assert text.exit_code == 0 and "0 pending" in text.output

        replay = runner.invoke(main, ["events", "replay", "--since", "1h", "--sink", server.url], env=env)
        assert replay.exit_code == 0, replay.output
        assert server.ids() == [event_id, event_id]
    finally:
        server.stop()


def test_tail_prints_the_latest_events_filtered_by_type(tmp_path: Path, env: dict[str, str]) -> None:
    with EventBus(outbox=env["IRGOV_OUTBOX"]) as bus:
        events = [seed_event(t) for t in (EventType.VALIDATED_PASS, EventType.VALIDATED_REJECT,
                                          EventType.VALIDATED_PASS)]
        for event in events:
            bus.publish(event)
    runner = CliRunner()
    result = runner.invoke(main, ["events", "tail", "--type", "ir.validated_pass", "-n", "5"], env=env)
    assert result.exit_code == 0
    assert [json.loads(line)["id"] for line in result.output.splitlines()] == [events[0].id, events[2].id]
    last = runner.invoke(main, ["events", "tail", "-n", "1"], env=env)
    assert [json.loads(line)["id"] for line in last.output.splitlines()] == [events[2].id]


def test_configuration_errors_are_one_line(env: dict[str, str]) -> None:
    runner = CliRunner()
    bad_sink = runner.invoke(main, ["events", "status"], env={**env, "IRGOV_EVENT_SINKS": "kafka://x"})
    assert bad_sink.exit_code == 1
    assert bad_sink.stderr.startswith("irgov: error: unknown event sink `kafka://x`")
    bad_since = runner.invoke(main, ["events", "replay", "--since", "yesterday"], env=env)
    assert bad_since.exit_code == 1 and "`--since` = `yesterday`" in bad_since.stderr
    purge = runner.invoke(main, ["events", "purge"], env=env)
    assert purge.exit_code == 0 and json.loads(purge.output) == {"purged": 0}


def test_a_sink_configured_twice_is_a_one_line_error(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["events", "status"], env={**env, "IRGOV_EVENT_SINKS": "log:,log:"})
    assert result.exit_code == 1
    assert result.stderr == "irgov: error: a sink named `log:` is already configured\n"


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_an_unbounded_or_bad_flush_timeout_is_a_one_line_error(env: dict[str, str], value: str) -> None:
    env = {**env, "IRGOV_EVENTS_FLUSH_TIMEOUT": value, "IRGOV_EVENT_SINKS": "log:"}
    result = CliRunner().invoke(main, ["approvals", "list", "--tenant", "acme", "--store", "memory://"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("irgov: error: `IRGOV_EVENTS_FLUSH_TIMEOUT`") and result.stderr.count("\n") == 1


def test_durations_beyond_the_calendar_are_handled(env: dict[str, str]) -> None:
    runner = CliRunner()
    since = runner.invoke(main, ["events", "replay", "--since", "99999999d"], env=env)
    assert since.exit_code == 1
    assert since.stderr == "irgov: error: `--since` = `99999999d` reaches back before the first representable date\n"
    purge = runner.invoke(main, ["events", "purge"], env={**env, "IRGOV_EVENT_RETENTION_DAYS": "1e300"})
    assert purge.exit_code == 0 and json.loads(purge.output) == {"purged": 0}
