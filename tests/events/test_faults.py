"""Fault tests with real processes, a real HTTP server and the real Redis server: whatever a sink
does, decisions are unchanged and no critical event is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.approvals import ApprovalService, ApprovalStatus, KeyRing, open_store
from irgov_policy.approvals.store_memory import MemoryApprovalStore
from irgov_policy.audit import audit
from irgov_policy.events import EventBus, EventType, MemorySink, RetryPolicy
from irgov_policy.events.sinks.webhook import WebhookSink
from irgov_policy.hashing import step_hash
from irgov_policy.model import load_ir

from .helpers import (
    IR_HASH,
    FlakySink,
    RaisingSink,
    SleepingSink,
    WebhookServer,
    free_port,
    seed_event,
    wait_until,
)

FAST = RetryPolicy(base_seconds=0.01, max_seconds=0.1)
REPO = Path(__file__).resolve().parents[2]


def _child(code: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _read_then_kill(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Read the child's one JSON line (written once its work is recorded), then SIGKILL it."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    if not line:
        assert proc.stderr is not None
        pytest.fail(f"child process printed nothing: {proc.stderr.read()}")
    result: dict[str, Any] = json.loads(line)
    return result


CONSUME_THEN_HANG = """
    import json, sys, time
    from irgov_policy.approvals import ApprovalService, KeyRing, open_store
    from irgov_policy.events import EventBus
    from irgov_policy.events.sinks.webhook import WebhookSink
    store_url, webhook, ir_hash = sys.argv[1:4]
    # The bus keeps events in memory only: the store's own outbox is the durable record.
    bus = EventBus([WebhookSink(webhook)])
    service = ApprovalService(open_store(store_url), KeyRing.generate(), bus=bus)
    approval, token = service.create("tenant_k", ir_hash, created_by="alice")
    result = service.consume(token, tenant_id="tenant_k", ir_hash=ir_hash, consumed_by="bob")
    print(json.dumps({"approval_id": approval.approval_id, "consumed": result.success}), flush=True)
    time.sleep(60)
"""


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def approval_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'approvals.db'}"
    redis_url: str = request.getfixturevalue("redis_url")
    request.getfixturevalue("redis_client")  # deletes the prefix's keys afterwards
    prefix: str = request.getfixturevalue("redis_prefix")
    return f"{redis_url}?prefix={prefix}&outbox={prefix}outbox"


def test_sigkill_after_consume_before_delivery_then_the_relay_delivers_it(
        approval_store_url: str, tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet: the child's relay cannot deliver
    server = WebhookServer(port)
    child = _child(CONSUME_THEN_HANG, approval_store_url, server.url, IR_HASH)
    report = _read_then_kill(child)
    assert report["consumed"] is True
    store = open_store(approval_store_url)
    assert store.outbox_url is not None
    server.start()
    try:
        with EventBus([WebhookSink(server.url)], outbox=f"sqlite:///{tmp_path}/relay.db", retry=FAST) as bus:
            bus.attach_outbox(store.outbox_url)
            assert bus.flush(10)
        consumed = [b for b in server.bodies if b["type"] == EventType.APPROVAL_CONSUMED]
        assert [b["data"]["approval_id"] for b in consumed] == [report["approval_id"]]
        assert consumed[0]["tenantid"] == "tenant_k" and consumed[0]["data"]["consumed_by"] == "bob"
    finally:
        server.stop()
    approval = ApprovalService(store, None).get(report["approval_id"], "tenant_k")
    assert approval is not None and approval.status == ApprovalStatus.CONSUMED


PUBLISH_THEN_HANG = """
    import json, sys, time
    from irgov_policy.events import EventBus, EventType, RetryPolicy, new_event
    from irgov_policy.events.sinks.webhook import WebhookSink
    outbox, webhook = sys.argv[1:3]
    bus = EventBus([WebhookSink(webhook)], outbox=outbox, retry=RetryPolicy(base_seconds=0.01))
    ids = []
    for i, kind in enumerate([EventType.VALIDATED_REJECT, EventType.VALIDATED_ESCALATE, EventType.DAG_DIFF_FAILED,
                              EventType.APPROVAL_INVALID, EventType.APPROVAL_CONSUMED]):
        event = new_event(kind, {"n": i}, tenant_id="tenant_%d" % (i % 2), correlation_id="req_%d" % i)
        bus.publish(event)
        ids.append(event.id)
    print(json.dumps({"ids": ids}), flush=True)
    time.sleep(60)
"""


def test_critical_events_of_a_killed_process_are_delivered_after_restart(tmp_path: Path) -> None:
    outbox = f"sqlite:///{tmp_path}/outbox.db"
    server = WebhookServer()
    child = _child(PUBLISH_THEN_HANG, outbox, server.url)
    ids = _read_then_kill(child)["ids"]
    server.start()
    try:
        with EventBus([WebhookSink(server.url)], outbox=outbox, retry=FAST) as bus:
            before = bus.status()
            assert before.pending == 5 and before.sinks[0].sink == WebhookSink(server.url).name
            assert bus.flush(10)
            assert bus.status().pending == 0
        assert sorted(server.ids()) == sorted(ids)
    finally:
        server.stop()


def _ir_and_dag() -> tuple[Any, list[dict[str, Any]]]:
    doc = {
        "tenant_id": "tenant_123", "request_id": "req_1", "created_at": "2026-11-27T10:00:00Z",
        "steps": [{"action": "dns.update_records", "provider": "dns.hetzner", "resource": f"zone/{i}.example",
                   "params": {"n": i}, "idempotency_key": f"k{i}"} for i in range(3)],
    }
    ir = load_ir(json.dumps(doc).encode())
    nodes = [{"ir_step_id": sid, "ir_step_hash": step_hash(s, "sha256")}
             for sid, s in zip(ir.step_ids(), ir.steps, strict=True)]
    return ir, nodes


def _decisions(bus: EventBus | None) -> list[Any]:
    """Diff audits and approvals whose outcome must not depend on the sinks."""
    ir, nodes = _ir_and_dag()
    outcomes: list[Any] = []
    for dag in (nodes, nodes[1:], nodes[:2] + [{"ir_step_id": nodes[2]["ir_step_id"], "ir_step_hash": IR_HASH}]):
        result = audit(ir, dag, bus=bus)
        outcomes.append((result.success, result.problems()))
    service = ApprovalService(MemoryApprovalStore(), KeyRing.generate(), bus=bus)
    approval, token = service.create("tenant_123", IR_HASH)
    outcomes.append(service.consume(token, tenant_id="tenant_999", ir_hash=IR_HASH).reason)
    outcomes.append(service.consume(token, tenant_id="tenant_123", ir_hash=IR_HASH).success)
    outcomes.append(service.consume(token, tenant_id="tenant_123", ir_hash=IR_HASH).reason)
    return outcomes


def test_raising_hanging_and_recovering_sinks_change_no_decision_and_lose_no_critical_event(
        tmp_path: Path) -> None:
    expected = _decisions(None)
    raising, sleeping, flaky, memory = RaisingSink(), SleepingSink(), FlakySink(), MemorySink()
    server = WebhookServer()  # down for now
    bus = EventBus([raising, sleeping, flaky, memory, WebhookSink(server.url)],
                   outbox=f"sqlite:///{tmp_path}/outbox.db", retry=FAST, poll_interval=0.05)
    try:
        assert _decisions(bus) == expected
        assert sleeping.entered.wait(10)  # the hanging sink is stuck in its call...
        assert _decisions(bus) == expected  # ...and publishing neither waits for it nor fails
        published = bus.outbox.recent(1000)
        critical = {r.event_id for r in published if r.critical}
        # Per round: ok + 2 failed audits, created, invalid (tenant), consumed, invalid (already consumed).
        assert len(published) == 2 * 7 and len(critical) == 2 * 5
        assert not bus.flush(0.3)
        assert raising.calls > 0 and flaky.failed > 0
        flaky.up = True
        server.start()
        bus.relay.rescan()
        assert wait_until(lambda: critical <= set(flaky.ids()) and critical <= set(server.ids()))
        assert critical <= set(memory.ids())

        def pending() -> dict[str, int]:
            return {s.sink: s.pending for s in bus.status().sinks}

        # A sink has an event before the relay records the delivery mark: wait for the marks.
        assert wait_until(lambda: pending()[flaky.name] == 0 and pending()[memory.name] == 0)
        assert pending()[raising.name] == len(published) and pending()[sleeping.name] > 0
    finally:
        sleeping.release.set()
        bus.close(timeout=2)
        server.stop()


def test_a_redis_stream_outbox_entry_is_drained_by_event_id(redis_url: str, redis_client: Any,
                                                             redis_prefix: str, tmp_path: Path) -> None:
    stream = f"{redis_prefix}outbox"
    events = [seed_event(EventType.APPROVAL_CONSUMED) for _ in range(3)]
    for event in events:
        redis_client.xadd(stream, {"event_id": event.id, "tenant_id": event.tenant_id, "type": event.type,
                                   "critical": "1", "body": event.to_json()})
    sink = MemorySink()
    with EventBus([sink], outbox=f"sqlite:///{tmp_path}/relay.db", retry=FAST) as bus:
        bus.attach_outbox(f"{redis_url}?stream={stream}")
        bus.publish(events[0])  # also published on the bus: delivered once
        assert bus.flush(10)
        assert sink.ids() == [e.id for e in events]
        more = seed_event(EventType.APPROVAL_CONSUMED)
        redis_client.xadd(stream, {"event_id": more.id, "tenant_id": more.tenant_id, "type": more.type,
                                   "critical": "1", "body": more.to_json()})
        assert bus.flush(10)
        assert sink.ids() == [e.id for e in [*events, more]]
