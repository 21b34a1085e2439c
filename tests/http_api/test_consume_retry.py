"""Finding: a consume retried after a crash burned the approval. The server committed a consume
and died before answering; the executor's retry got `already_consumed` and could not tell the
consume was its own. Here a real server (uvicorn) is killed between the commit and the answer, a
standard `irgov serve` is started on the same state, and the retry with the `Idempotency-Key`
gets the original success, over `/approvals/consume` and over `/authorize`, with no second
`ir.approval_consumed`; the key reused by another caller or for another token is a 409. The gate's
retry is its first answer byte for byte (recorded with the consume, `checked_at` included) and
publishes nothing: one `ir.dag_diff_ok` for the gate, ever."""

from __future__ import annotations

import os
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kernel.flows import ESCALATE_IR, dag_for, ir

from irgov_policy.events.envelope import parse_timestamp

from .conftest import API_KEYS, KEYS
from .live import free_port, running


def auth(who: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {KEYS[who]}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def server(workdir: Path, *, crashing: bool) -> tuple[str, Any]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    env["IRGOV_API_KEYS"] = ",".join(API_KEYS)
    if crashing:
        argv = [sys.executable, str(Path(__file__).with_name("crashing_app.py")), str(port)]
    else:
        argv = [sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve", "--port", str(port),
                "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    return base, running(argv, cwd=workdir, env=env, health_url=base + "/health")


def grant(client: httpx.Client, doc: dict[str, Any]) -> tuple[str, str]:
    decision = client.post("/validate", json=doc, headers=auth("alice")).json()
    assert decision["status"] == "ESCALATE", decision
    request_id = client.post("/approvals", json={"tenant_id": "t1", "ir_hash": decision["ir_hash"]},
                             headers=auth("alice")).json()["request_id"]
    granted = client.post(f"/approvals/{request_id}/grant", headers=auth("bob")).json()
    return granted["token"], decision["ir_hash"]


def recorded_events(workdir: Path, event_type: str | None = None) -> list[str]:
    """Distinct ids of the events recorded in the store's and the bus's outboxes."""
    ids: set[str] = set()
    for name in ("approvals.db", "outbox.db"):
        with sqlite3.connect(workdir / ".irgov" / name) as conn:
            ids |= {r[0] for r in conn.execute("SELECT event_id, type FROM irgov_outbox")
                    if event_type is None or r[1] == event_type}
    return sorted(ids)


def consumed_events(workdir: Path) -> list[str]:
    return recorded_events(workdir, "ir.approval_consumed")


def test_a_retry_after_the_server_died_between_commit_and_answer_gets_the_first_success(tmp_path: Path) -> None:
    gate_ir = ir(ESCALATE_IR, request_id="req-gate")
    base, crashing = server(tmp_path, crashing=True)
    with crashing as process, httpx.Client(base_url=base, timeout=30) as client:
        token, ir_hash = grant(client, ESCALATE_IR)
        gate_token, _gate_hash = grant(client, gate_ir)
        consume = {"tenant_id": "t1", "ir_hash": ir_hash, "token": token}
        with pytest.raises(httpx.TransportError):
            client.post("/approvals/consume", json=consume, headers=auth("alice", "consume-1"))
        assert process.wait(10) == -9, "the server did not die after the commit"
    assert len(consumed_events(tmp_path)) == 1, "the consume committed with its event"

    gate = {"ir": gate_ir, "dag": dag_for(gate_ir), "approval_token": gate_token}
    base, crashing = server(tmp_path, crashing=True)
    with crashing as process, httpx.Client(base_url=base, timeout=30) as client:
        with pytest.raises(httpx.TransportError):
            client.post("/authorize", json=gate, headers=auth("alice", "gate-1"))
        assert process.wait(10) == -9
    assert len(consumed_events(tmp_path)) == 2
    # The audit ran before the consume and its event was recorded before the commit.
    assert len(recorded_events(tmp_path, "ir.dag_diff_ok")) == 1
    restarted_at = datetime.now(UTC)

    base, standard = server(tmp_path, crashing=False)
    with standard, httpx.Client(base_url=base, timeout=30) as client:
        replay = client.post("/approvals/consume", json=consume, headers=auth("alice", "consume-1"))
        assert replay.status_code == 200, replay.text
        assert replay.json()["success"] is True and replay.json()["status"] == "consumed"
        again = client.post("/approvals/consume", json=consume, headers=auth("alice", "consume-1"))
        assert again.content == replay.content, "the same answer, byte for byte"
        # Without the key the executor cannot tell the consume was its own (what the attack found).
        blind = client.post("/approvals/consume", json=consume, headers=auth("alice")).json()
        assert blind["success"] is False and blind["reason"] == "already_consumed"

        before_gate = recorded_events(tmp_path)
        cleared = client.post("/authorize", json=gate, headers=auth("alice", "gate-1"))
        assert cleared.status_code == 200, cleared.text
        clearance = cleared.json()
        assert clearance["allowed"] is True and clearance["reasons"] == [], clearance
        assert clearance["approval"]["success"] is True and clearance["approval"]["reason"] is None
        assert clearance["audit"]["success"] is True and clearance["decision"]["status"] == "ESCALATE"
        # The answer the dead server built before its commit, not a new judgement.
        assert parse_timestamp(clearance["checked_at"]) < restarted_at
        gate_again = client.post("/authorize", json=gate, headers=auth("alice", "gate-1"))
        assert gate_again.content == cleared.content, "the same answer, byte for byte"
        as_object = client.post("/authorize", json={**gate, "dag": {"nodes": gate["dag"]}},
                                headers=auth("alice", "gate-1"))
        assert as_object.status_code == 409 and as_object.json()["detail"] == (
            "idempotency key `gate-1` was used for another dag")

        # The key is the caller's and its consume's: reused otherwise, it is refused, never a success.
        other_caller = client.post("/approvals/consume", json=consume, headers=auth("root", "consume-1"))
        assert other_caller.status_code == 409 and other_caller.json()["type"].endswith("/idempotency-conflict")
        assert other_caller.json()["detail"] == "idempotency key `consume-1` was used by another caller"
        other_token = client.post("/authorize", json=gate, headers=auth("alice", "consume-1"))
        assert other_token.status_code == 409, other_token.text
        assert other_token.json()["detail"] == ("idempotency key `consume-1` was used to consume another "
                                                "approval token")
        bad = client.post("/approvals/consume", json=consume, headers=auth("alice", "irgap_" + "x" * 20))
        assert bad.status_code == 422 and "irgap_x" not in bad.text
    assert len(consumed_events(tmp_path)) == 2, "no retry recorded a second consume"
    assert len(recorded_events(tmp_path, "ir.dag_diff_ok")) == 1, "no gate retry audited again"
    assert recorded_events(tmp_path) == before_gate, "no gate retry recorded any event"
