"""Finding (part): a stalled store stalled everything, `/health` included. With the ledger's
database write-locked by an operator's `sqlite3` shell, validations wait for the lock and fill
the shared thread pool; `/health` now runs its probes on its own threads with its own short
timeout, so it still answers, and names each store's state."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

import httpx
from kernel.flows import ESCALATE_IR, ir

from .conftest import API_KEYS, KEYS
from .live import free_port, running


def test_health_answers_while_the_ledger_is_write_locked(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    env["IRGOV_API_KEYS"] = ",".join(API_KEYS)
    argv = [sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve", "--port", str(port),
            "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    with running(argv, cwd=tmp_path, env=env, health_url=base + "/health"):
        lock = sqlite3.connect(tmp_path / ".irgov" / "approvals.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # what an operator's shell holding a write does
        answers: list[int] = []

        def validate(n: int) -> None:
            response = httpx.post(base + "/validate", json=ir(ESCALATE_IR, request_id=f"req-{n}"),
                                  headers={"Authorization": f"Bearer {KEYS['root']}"}, timeout=60)
            answers.append(response.status_code)

        waiting = [threading.Thread(target=validate, args=(n,)) for n in range(16)]
        for thread in waiting:
            thread.start()
        time.sleep(1.0)  # let the validations take every thread of the shared pool
        try:
            health = httpx.get(base + "/health", timeout=10)
            assert answers == [], "the lock did not hold the validations"
        finally:
            lock.execute("ROLLBACK")
            lock.close()
            for thread in waiting:
                thread.join(60)
        assert health.status_code == 200, health.text
        assert health.json()["checks"] == {"ledger": "ok", "approval_store": "ok"}
        assert sorted(set(answers)) == [200]
