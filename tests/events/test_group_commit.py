"""The SQLite outbox's grouped commits: a critical event is on disk when the call that published it
returns (seen from another connection and another process, and after a SIGKILL), concurrent
publishers share commits, non-critical events are committed after the call and never lost on a
clean exit, and a commit that fails is refused to the waiting caller and retried."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.errors import EventError
from irgov_policy.events import EventBus, EventType, new_event
from irgov_policy.events.outbox_sqlite import SqliteOutbox
from irgov_policy.kernel import Governance

PASS_STEP = ("course.generate_lessons", "course_factory.v1")
ESCALATE_STEP = ("dns.update_records", "dns.cloudflare")
REJECT_STEP = ("nuke.everything", "x.v1")


def ir(step: tuple[str, str], i: int) -> str:
    action, provider = step
    return json.dumps({"tenant_id": "tenant_g", "request_id": f"req_{i}", "steps": [
        {"step_id": "s1", "action": action, "provider": provider, "resource": f"res/{i}", "params": {"n": i},
         "idempotency_key": f"key-{i}"}]})


def stored(db: Path) -> dict[str, str]:
    """event type by event id, read on a connection of its own."""
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT event_id, type FROM irgov_outbox").fetchall())
    finally:
        conn.close()


def stored_hashes(db: Path, event_type: str) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        bodies = [r[0] for r in conn.execute("SELECT body FROM irgov_outbox WHERE type = ?", (event_type,))]
    finally:
        conn.close()
    return {json.loads(b)["payload"]["ir_hash"] for b in bodies}


def kernel(tmp_path: Path, **overrides: Any) -> Governance:
    return Governance.from_config(environ={}, approval_store=f"sqlite:///{tmp_path}/approvals.db",
                                  outbox=f"sqlite:///{tmp_path}/outbox.db", **overrides)


def test_a_critical_decision_is_on_disk_when_validate_returns(tmp_path: Path) -> None:
    gov = kernel(tmp_path)
    try:
        decision = gov.validate(ir(ESCALATE_STEP, 1))
        assert decision.status == "ESCALATE"
        # another connection of this process, then another process, while the kernel is open
        assert decision.ir_hash in stored_hashes(tmp_path / "outbox.db", EventType.VALIDATED_ESCALATE)
        probe = subprocess.run(
            [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
             "print(c.execute(\"SELECT count(*) FROM irgov_outbox WHERE type = 'ir.validated_escalate'\")"
             ".fetchone()[0])", str(tmp_path / "outbox.db")],
            capture_output=True, text=True, timeout=60, check=True)
        assert probe.stdout.strip() == "1"
    finally:
        gov.close()


def test_decisions_from_eight_threads_all_land(tmp_path: Path) -> None:
    gov = kernel(tmp_path)
    steps = (PASS_STEP, ESCALATE_STEP, REJECT_STEP)
    critical: dict[str, str] = {}
    every: dict[str, str] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for n in range(30):
                i = thread * 1000 + n
                decision = gov.validate(ir(steps[i % 3], i))
                event_type = f"ir.validated_{decision.status.lower()}"
                with lock:
                    every[decision.ir_hash] = event_type
                    if decision.status != "PASS":
                        critical[decision.ir_hash] = event_type
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert len(every) == 240
        db = tmp_path / "outbox.db"
        # the critical ones before anything is flushed or closed
        for event_type in (EventType.VALIDATED_ESCALATE, EventType.VALIDATED_REJECT):
            assert {h for h, t in critical.items() if t == event_type} <= stored_hashes(db, event_type)
    finally:
        gov.close()
    for event_type in (EventType.VALIDATED_PASS, EventType.VALIDATED_ESCALATE, EventType.VALIDATED_REJECT):
        assert {h for h, t in every.items() if t == event_type} == stored_hashes(db, event_type)
    conn = sqlite3.connect(tmp_path / "approvals.db")
    try:
        assert conn.execute("SELECT count(*) FROM irgov_decisions").fetchone()[0] == 240
    finally:
        conn.close()


def test_waiting_publishers_share_one_commit(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    outbox = SqliteOutbox(db)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the database is write-locked: every append must wait
    events = [new_event(EventType.VALIDATED_REJECT, {"n": i}, tenant_id="t") for i in range(8)]
    threads = [threading.Thread(target=outbox.append, args=(e,)) for e in events]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while outbox._writer.queued < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert outbox._writer.queued == 8
        assert not stored(db)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    for thread in threads:
        thread.join(30)
    assert set(stored(db)) == {e.id for e in events}
    # the first waiter took what was queued when it began, the next one took all the others
    assert outbox._writer.commits <= 2
    outbox.close()


def test_a_failed_commit_is_refused_to_the_waiter_and_retried(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    outbox = SqliteOutbox(db, busy_timeout_ms=50)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    event = new_event(EventType.DAG_DIFF_FAILED, {"n": 1}, tenant_id="t")
    try:
        with pytest.raises(EventError, match="cannot commit"):
            outbox.append(event)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert outbox.flush(30)  # still queued: the writer thread retries it
    assert event.id in stored(db)
    outbox.close()


def test_non_critical_events_wait_for_no_commit_and_are_committed_on_close(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    outbox = SqliteOutbox(db)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    events = [new_event(EventType.VALIDATED_PASS, {"n": i}, tenant_id="t") for i in range(20)]
    try:
        for event in events:
            assert outbox.append(event)  # returns while the database is locked: nothing waited
        assert not stored(db)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    outbox.close()
    assert set(stored(db)) == {e.id for e in events}


def test_a_batch_waits_once_for_all_its_critical_events(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    bus = EventBus(outbox=f"sqlite:///{db}", autostart=False)
    events = [new_event(EventType.VALIDATED_REJECT, {"n": i}, tenant_id="t") for i in range(50)]
    with bus.batch() as batch:
        for event in events:
            bus.publish(event)
    assert batch.durable
    assert set(stored(db)) == {e.id for e in events}
    bus.close()


CHILD = textwrap.dedent("""
    import json, sqlite3, sys
    from irgov_policy.kernel import Governance
    root, mode = sys.argv[1], sys.argv[2]
    gov = Governance.from_config(environ={}, approval_store=f"sqlite:///{root}/approvals.db",
                                 outbox=f"sqlite:///{root}/outbox.db")
    def ir(action, provider, i):
        return json.dumps({"tenant_id": "tenant_g", "request_id": f"req_{i}", "steps": [
            {"step_id": "s1", "action": action, "provider": provider, "resource": f"res/{i}",
             "params": {"n": i}, "idempotency_key": f"key-{i}"}]})
    step = ("dns.update_records", "dns.cloudflare") if mode == "critical" else ("course.generate_lessons", "course_factory.v1")
    i = 0
    while mode == "critical" or i < 200:
        if i == 180:  # the last events queue up behind a write lock held by another connection
            blocker = sqlite3.connect(f"{root}/outbox.db", isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
        decision = gov.validate(ir(*step, i))
        print(decision.status, decision.ir_hash, flush=True)
        i += 1
    blocker.execute("ROLLBACK")
    # a clean exit without close, right after the lock is gone: the queue is drained at exit
""")


def test_sigkill_after_return_loses_no_critical_event(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), "critical"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    returned: set[str] = set()
    try:
        assert child.stdout is not None
        while len(returned) < 40:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"the child ended early: {child.stderr.read() if child.stderr else ''}")
            status, digest = line.split()
            assert status == "ESCALATE"
            returned.add(digest)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert returned <= stored_hashes(tmp_path / "outbox.db", EventType.VALIDATED_ESCALATE)


def test_a_clean_exit_commits_queued_non_critical_events(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), "pass"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    returned = {line.split()[1] for line in done.stdout.splitlines()}
    assert len(returned) == 200
    assert returned == stored_hashes(tmp_path / "outbox.db", EventType.VALIDATED_PASS)


def test_validate_waits_for_no_commit_of_a_pass_decisions_event(tmp_path: Path) -> None:
    gov = kernel(tmp_path)
    db = tmp_path / "outbox.db"
    gov.validate(ir(PASS_STEP, 0))  # the outbox file and its writer exist
    assert gov.bus.flush(30)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # no event can be committed now
    try:
        decisions: list[Any] = []
        # each call returns with its event queued (a wait for the lock would outlast the join)
        caller = threading.Thread(target=lambda: decisions.extend(gov.validate(ir(PASS_STEP, i))
                                                                  for i in range(1, 11)))
        caller.start()
        caller.join(20)
        assert not caller.is_alive(), "validate waited for a non-critical event's commit"
        assert {d.status for d in decisions} == {"PASS"} and len(decisions) == 10
        assert not stored_hashes(db, EventType.VALIDATED_PASS) & {d.ir_hash for d in decisions}
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    gov.close()
    assert {d.ir_hash for d in decisions} <= stored_hashes(db, EventType.VALIDATED_PASS)
