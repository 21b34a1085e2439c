"""Bug 4: `grant` was two writes in two databases, and a process killed between them left a
request `granted` with no approval. The grant is now one transaction of the approval store: kill
a process with SIGKILL while it grants under load, and every request is either `requested`
(grantable) or `granted` with its approval, and every approval belongs to a granted request."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from irgov_policy.approvals import KeyRing
from irgov_policy.kernel import Governance

WORKER = Path(__file__).with_name("grant_worker.py")
ROUNDS = 4


def _kill_while_granting(store_url: str, key: str) -> None:
    rng = random.Random(9)
    for _ in range(ROUNDS):
        proc = subprocess.Popen([sys.executable, str(WORKER), store_url, key], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "granting", proc.stderr.read() if proc.stderr else line
            time.sleep(rng.uniform(0.2, 0.8))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL


def _check(requests: list[tuple[str, str, str | None]], approvals: set[str]) -> None:
    assert requests, "the worker granted nothing"
    states = {state for _, state, _ in requests}
    assert states <= {"requested", "granted"}
    granted = [(rid, aid) for rid, state, aid in requests if state == "granted"]
    assert granted, "no grant committed before the kill"
    unlinked = [rid for rid, aid in granted if aid is None or aid not in approvals]
    assert unlinked == [], f"granted without an approval: {unlinked}"
    linked = {aid for _, aid in granted}
    assert approvals - linked == set(), "approvals that no request links"


def _grant_a_left_over_request(store_url: str, key: str) -> None:
    with Governance.from_config(environ={}, approval_store=store_url, approval_key=key, outbox="memory:") as gov:
        views, _ = gov.list_requests("t1", status="requested", limit=200)
        if views:  # the kill may have landed after a request and before its grant
            grant = gov.grant(views[0].request.request_id, "bob", "t1")
            assert grant.request.status == "pending"


def test_a_killed_grant_never_leaves_a_request_granted_without_its_approval_sqlite(tmp_path: Path) -> None:
    key = KeyRing.generate("k1").to_text()
    db = tmp_path / "approvals.db"
    url = f"sqlite:///{db}"
    _kill_while_granting(url, key)
    conn = sqlite3.connect(db)
    try:
        requests = conn.execute("SELECT request_id, state, approval_id FROM irgov_approval_requests").fetchall()
        approvals = {r[0] for r in conn.execute("SELECT approval_id FROM irgov_approvals")}
    finally:
        conn.close()
    _check(requests, approvals)
    assert not (tmp_path / "approvals.ledger.db").exists()  # one database, no second file
    _grant_a_left_over_request(url, key)


def test_a_killed_grant_never_leaves_a_request_granted_without_its_approval_redis(
        redis_url: str, redis_prefix: str, redis_client: Any) -> None:
    key = KeyRing.generate("k1").to_text()
    url = f"{redis_url}?prefix={redis_prefix}&outbox={redis_prefix}outbox"
    _kill_while_granting(url, key)
    requests = []
    for name in redis_client.scan_iter(match=f"{redis_prefix}ledger:request:*", count=1000):
        data = {k.decode(): v.decode() for k, v in redis_client.hgetall(name).items()}
        requests.append((data["request_id"], data["state"], data.get("approval_id")))
    approvals = {k.decode().rsplit(":", 1)[1]
                 for k in redis_client.scan_iter(match=f"{redis_prefix}approval:*", count=1000)}
    _check(requests, approvals)
    _grant_a_left_over_request(url, key)
