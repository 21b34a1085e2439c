"""Finding: a stalled store stalled everything, `/health` included. With the approvals database
write-locked by an operator's `sqlite3` shell, or Redis under `CLIENT PAUSE`, requests waited for
the store (30 s) and filled the shared thread pool. Every store call now waits at most
`store_timeout` and the request is answered 503 with a problem document naming the store;
`/health` runs its probes on its own threads with its own short timeout and names each store's state.

The time bounds below prove liveness (an answer, not a hang): ten times the configured timeout."""

from __future__ import annotations

import base64
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kernel.flows import ESCALATE_IR, ir

from .conftest import API_KEYS, KEYS
from .live import free_port, running
from .private_redis import private_redis

STORE_TIMEOUT = 1.0
LIVENESS = 10 * STORE_TIMEOUT
PAUSE = 8.0


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


def serve(workdir: Path, **settings: str) -> Any:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    env.update({"IRGOV_API_KEYS": ",".join(API_KEYS), "IRGOV_STORE_TIMEOUT": str(STORE_TIMEOUT),
                **{f"IRGOV_{k.upper()}": v for k, v in settings.items()}})
    argv = [sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve", "--port", str(port),
            "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    return base, running(argv, cwd=workdir, env=env, health_url=base + "/health")


def granted_token(client: httpx.Client) -> tuple[str, dict[str, str]]:
    """A token granted over HTTP, and the consume body for it."""
    decision = client.post("/validate", json=ESCALATE_IR, headers=auth("alice")).json()
    assert decision["status"] == "ESCALATE", decision
    request_id = client.post("/approvals", json={"tenant_id": "t1", "ir_hash": decision["ir_hash"]},
                             headers=auth("alice")).json()["request_id"]
    token = client.post(f"/approvals/{request_id}/grant", headers=auth("bob")).json()["token"]
    return token, {"tenant_id": "t1", "ir_hash": decision["ir_hash"], "token": token}


def assert_store_timeout(response: httpx.Response, backend: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/store-timeout")
    assert problem["detail"] == (f"the approval store ({backend}) did not answer within {STORE_TIMEOUT:g} s: "
                                 "retry later")
    assert response.headers["retry-after"] == "1"


def timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_a_write_locked_sqlite_store_is_answered_503_and_health_stays_up(tmp_path: Path) -> None:
    base, server = serve(tmp_path)
    with server, httpx.Client(base_url=base, timeout=60) as client:
        _token, consume = granted_token(client)
        lock = sqlite3.connect(tmp_path / ".irgov" / "approvals.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # what an operator's shell holding a write does
        answers: list[int] = []

        def validate(n: int) -> None:
            answers.append(httpx.post(base + "/validate", json=ir(ESCALATE_IR, request_id=f"req-{n}"),
                                      headers=auth("root"), timeout=60).status_code)

        waiting = [threading.Thread(target=validate, args=(n,)) for n in range(8)]
        try:
            for thread in waiting:
                thread.start()
            refused, took = timed(lambda: client.post("/approvals/consume", json=consume, headers=auth("alice")))
            health = client.get("/health", timeout=LIVENESS)
            for thread in waiting:
                thread.join(60)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert_store_timeout(refused, "sqlite")
        assert took < LIVENESS, f"the consume waited {took:.1f} s on the locked store"
        # Reads go on under a write lock (WAL), so the store is up; every validation was answered
        # (its decision stands; it was not recorded, and approving it will say so).
        assert health.status_code == 200 and health.json()["checks"] == {"ledger": "ok", "approval_store": "ok"}
        assert sorted(set(answers)) == [200] and len(answers) == 8
        # The refused consume wrote nothing: once the lock is gone, the token is still good.
        after = client.post("/approvals/consume", json=consume, headers=auth("alice")).json()
        assert after["success"] is True, after


@pytest.fixture
def paused_redis_server(tmp_path: Path) -> Iterator[str]:
    with private_redis(tmp_path) as url:
        yield url


@pytest.mark.redis
def test_a_paused_redis_store_is_answered_503_and_health_names_it(tmp_path: Path, paused_redis_server: str) -> None:
    import redis

    key = "k1:" + base64.b64encode(b"s" * 32).decode()
    base, server = serve(tmp_path, approval_store=paused_redis_server, approval_key=key)
    admin = redis.Redis.from_url(paused_redis_server)
    with server, httpx.Client(base_url=base, timeout=60) as client:
        _token, consume = granted_token(client)
        # Every client, this one included, waits out the pause (Redis 7.0 pauses `CLIENT UNPAUSE`
        # too): it is long enough for both requests below, then ends by itself.
        admin.execute_command("CLIENT", "PAUSE", str(int(PAUSE * 1000)), "ALL")
        paused_at = time.monotonic()
        keyed = {**auth("alice"), "Idempotency-Key": "consume-during-pause"}
        refused, took = timed(lambda: client.post("/approvals/consume", json=consume, headers=keyed))
        health, health_took = timed(lambda: client.get("/health", timeout=LIVENESS))
        still_paused = time.monotonic() - paused_at < PAUSE
        time.sleep(max(0.0, PAUSE - (time.monotonic() - paused_at)) + 0.5)
        assert still_paused, "the pause ended before the requests were answered: the check proves nothing"
        assert_store_timeout(refused, "redis")
        assert took < LIVENESS, f"the consume waited {took:.1f} s on the paused server"
        assert health.status_code == 503 and health_took < LIVENESS
        checks = health.json()["checks"]
        assert checks["approval_store"].startswith("slow: no answer within"), checks
        assert checks["ledger"].startswith("slow: no answer within"), checks
        assert client.get("/health").status_code == 200  # the server is back, and so is the service
        # The timed-out consume may have run once the pause ended (its script was sent): retried
        # with its key it succeeds either way, and is never `already_consumed`.
        retried = client.post("/approvals/consume", json=consume, headers=keyed).json()
        assert retried["success"] is True and retried["status"] == "consumed", retried
