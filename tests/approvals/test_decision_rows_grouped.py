"""The SQLite ledger's decision rows are committed in groups: an ESCALATE decision is in the
database (for another process's approval request) when `validate` returns; a PASS or REJECT one
is committed within milliseconds, seen at once by this process's own reads, and never lost on a
clean close; a locked database refuses the read that needs the queued rows instead of answering
without them, and reads of other IRs go on."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from irgov_policy.approvals.ledger_records import DecisionEntry
from irgov_policy.approvals.store_sqlite import SQLiteApprovalStore
from irgov_policy.errors import StoreError
from irgov_policy.kernel import Governance

PASS_STEP = ("course.generate_lessons", "course_factory.v1")
ESCALATE_STEP = ("dns.update_records", "dns.cloudflare")


def ir(step: tuple[str, str], i: int) -> str:
    action, provider = step
    return json.dumps({"tenant_id": "tenant_d", "request_id": f"req_{i}", "steps": [
        {"step_id": "s1", "action": action, "provider": provider, "resource": f"res/{i}", "params": {"n": i},
         "idempotency_key": f"key-{i}"}]})


def decided(db: Path) -> dict[str, str]:
    """status by IR hash, read on a connection of its own."""
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT ir_hash, status FROM irgov_decisions").fetchall())
    finally:
        conn.close()


def kernel(tmp_path: Path) -> Governance:
    return Governance.from_config(environ={}, approval_store=f"sqlite:///{tmp_path}/approvals.db",
                                  outbox="memory://")


def test_an_escalate_decision_is_in_the_database_when_validate_returns(tmp_path: Path) -> None:
    gov = kernel(tmp_path)
    try:
        decision = gov.validate(ir(ESCALATE_STEP, 1))
        assert decision.status == "ESCALATE"
        probe = subprocess.run(
            [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
             "print(c.execute('SELECT status FROM irgov_decisions WHERE ir_hash = ?', (sys.argv[2],))"
             ".fetchone()[0])", str(tmp_path / "approvals.db"), decision.ir_hash],
            capture_output=True, text=True, timeout=60, check=True)
        assert probe.stdout.strip() == "ESCALATE"
        # and another kernel on the file (one of another worker) can ask for its approval at once
        other = kernel(tmp_path)
        try:
            view = other.request_approval(decision.ir_hash, "alice", tenant_id="tenant_d")
            assert view.request.ir_hash == decision.ir_hash
        finally:
            other.close()
    finally:
        gov.close()


def test_pass_decisions_are_grouped_read_back_at_once_and_kept_on_close(tmp_path: Path) -> None:
    gov = kernel(tmp_path)
    db = tmp_path / "approvals.db"
    try:
        decisions = [gov.validate(ir(PASS_STEP, i)) for i in range(200)]
        assert {d.status for d in decisions} == {"PASS"}
        # this process's reads see its own rows, queued or not
        last = decisions[-1]
        entry = gov.ledger.get_decision("tenant_d", last.ir_hash)
        assert entry is not None and entry.status == "PASS"
        # another connection sees them once the writer's few milliseconds have passed
        deadline = time.monotonic() + 30
        while len(decided(db)) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(decided(db)) == 200
        more = [gov.validate(ir(PASS_STEP, 1000 + i)) for i in range(50)]
    finally:
        gov.close()
    # a clean close commits what was still queued
    assert {d.ir_hash for d in decisions + more} == set(decided(db))


def test_pass_decisions_share_commits(tmp_path: Path) -> None:
    store = SQLiteApprovalStore(tmp_path / "approvals.db")
    blocker = sqlite3.connect(tmp_path / "approvals.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # nothing can commit: the rows queue up
    try:
        for i in range(40):
            store.ledger.record_decision(DecisionEntry("t", f"sha256:{i:064x}", "PASS", 0, None, i, 1), None)
        assert store._decisions.queued == 40  # every call returned without waiting for the lock
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    commits_before = store._decisions.commits
    assert store._decisions.flush(30)
    assert store._decisions.commits - commits_before <= 2
    store.close()
    assert len(decided(tmp_path / "approvals.db")) == 40


def test_a_read_that_needs_queued_rows_is_refused_while_the_database_is_locked(tmp_path: Path) -> None:
    store = SQLiteApprovalStore(tmp_path / "approvals.db", timeout=0.2)
    blocker = sqlite3.connect(tmp_path / "approvals.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        store.ledger.record_decision(DecisionEntry("t", "sha256:" + "a" * 64, "REJECT", 3, None, 1, 1), "bob")
        with pytest.raises(StoreError, match="not committed after 0.2 s"):
            store.ledger.get_decision("t", "sha256:" + "a" * 64)
        # another IR's rows are not held up by it (the health probe reads one of those)
        assert store.ledger.get_decision("t", "sha256:" + "c" * 64) is None
        # an ESCALATE decision cannot be recorded without its commit: the caller hears of it
        with pytest.raises(StoreError, match="cannot commit decisions"):
            store.ledger.record_decision(DecisionEntry("t", "sha256:" + "b" * 64, "ESCALATE", 2, None, 2, 1), None)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # the queued rows were kept and are committed once the lock is gone
    assert store._decisions.flush(30)
    entry = store.ledger.get_decision("t", "sha256:" + "a" * 64)
    assert entry is not None and entry.status == "REJECT"
    assert store.ledger.submitters("t", "sha256:" + "a" * 64) == {"bob"}
    store.close()
