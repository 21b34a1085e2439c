"""`irgov serve --workers 2` as a real process: the documented flow across worker processes on
SQLite, Redis and PostgreSQL stores, counters added up over the workers, exactly one sweeper, and a
new sweeper after the leader is killed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from kernel.flows import ESCALATE_IR, dag_for

from irgov_policy.approvals import KeyRing

from .conftest import API_KEYS, KEYS
from .live import free_port, running

pytest.importorskip("prometheus_client", reason="prometheus-client is part of the `http` extra")

BACKENDS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis),
            pytest.param("postgres", marks=pytest.mark.postgres)]
WORKER = "x-irgov-worker"


def _auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def _eventually(check: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


class Seen:
    """Every request on a new connection, so the kernel may hand it to either worker."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.pids: list[str] = []

    def call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        response = httpx.request(method, self.base + path, timeout=15, **kwargs)  # type: ignore[arg-type]
        self.pids.append(response.headers[WORKER])
        return response

    def leaders(self) -> float:
        return _sample(self.call("GET", "/metrics", headers=_auth("root")).text, "irgov_leader", lease="sweeper")


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_workers_serve_the_flow_with_one_sweeper(backend: str, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IRGOV_", "PROMETHEUS_"))}
    env["IRGOV_API_KEYS"] = ",".join(API_KEYS)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    if backend == "postgres":
        env["IRGOV_APPROVAL_STORE"] = request.getfixturevalue("postgres_schema_url")
    if backend == "redis":
        # its own keys (the redis_client fixture deletes them afterwards); the outbox stays the
        # embedded SQLite file, as the deployment guide's Redis shape has it
        prefix = request.getfixturevalue("redis_prefix")
        request.getfixturevalue("redis_client")
        env["IRGOV_APPROVAL_STORE"] = f"{request.getfixturevalue('redis_url')}?prefix={prefix}"
    if backend != "sqlite":
        env["IRGOV_APPROVAL_KEY"] = KeyRing.generate("k1").to_text()
    argv = [sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve", "--port", str(port),
            "--workers", "2", "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    with running(argv, cwd=tmp_path, env=env, health_url=base + "/health") as server:
        seen = Seen(base)
        decision = seen.call("POST", "/validate", json=ESCALATE_IR, headers=_auth("alice")).json()
        assert decision["status"] == "ESCALATE"
        request_id = seen.call("POST", "/approvals", json={"tenant_id": "t1", "ir_hash": decision["ir_hash"]},
                               headers=_auth("alice")).json()["request_id"]
        assert seen.call("GET", f"/approvals/{request_id}", headers=_auth("bob")).json()["status"] == "requested"
        token = seen.call("POST", f"/approvals/{request_id}/grant", headers=_auth("bob")).json()["token"]
        body = {"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR), "approval_token": token}
        assert seen.call("POST", "/authorize", json=body, headers=_auth("alice")).json()["allowed"] is True
        replay = seen.call("POST", "/authorize", json=body, headers=_auth("alice")).json()
        assert replay["allowed"] is False and replay["approval"]["reason"] == "already_consumed"

        # Bounded: a few hundred new connections reach both workers.
        for _ in range(300):
            if len(set(seen.pids)) >= 2:
                break
            seen.call("GET", "/health")
        workers = set(seen.pids)
        assert len(workers) == 2 and str(server.pid) not in workers

        # Counters of both workers, added up by any worker's scrape.
        metrics = seen.call("GET", "/metrics", headers=_auth("root")).text
        assert _sample(metrics, "irgov_decisions_total", status="ESCALATE") == 3  # validate + two gates
        assert _sample(metrics, "irgov_approvals_total", state="consumed") == 1
        assert _sample(metrics, "irgov_consume_failures_total", reason="already_consumed") == 1
        assert _eventually(lambda: seen.leaders() == 1), "no worker leads the sweeper"
        assert all(seen.leaders() == 1 for _ in range(10)), "not exactly one sweeper"

        # Kill each first worker in turn (one of them leads): a worker takes the sweeper over.
        for pid in sorted(workers):
            os.kill(int(pid), signal.SIGKILL)
            assert _eventually(lambda pid=pid: seen.call("GET", "/health").headers[WORKER] != pid
                               and seen.leaders() == 1), f"no sweeper after worker {pid} was killed"
        assert all(seen.leaders() == 1 for _ in range(10))
        assert server.poll() is None


def test_workers_refuse_memory_stores(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    env["IRGOV_APPROVAL_STORE"] = "memory://"
    result = subprocess.run([sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve",
                             "--workers", "2", "--port", "0"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "`--workers 2` needs stores every worker shares" in lines[0], result.stderr
    assert "`approval_store` is `memory://`" in lines[0]


def test_an_api_reload_reaches_every_worker(tmp_path: Path) -> None:
    """`POST /packs/reload` answers for the worker that took it; the supervisor then replaces
    every worker, so each decides with the new set (the pack watcher is off: nothing else
    could reload them)."""
    from policy.conftest import copy_pack_folder

    from .test_pack_reload_live import BLOCKING_PACK, IR

    packs = copy_pack_folder(tmp_path / "packs")
    workdir = tmp_path / "serve"
    workdir.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IRGOV_", "PROMETHEUS_"))}
    env.update({"IRGOV_API_KEYS": ",".join(API_KEYS), "IRGOV_PACKS": str(packs), "IRGOV_WATCH_PACKS": "false",
                "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    argv = [sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve", "--port", str(port),
            "--workers", "2", "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    with running(argv, cwd=workdir, env=env, health_url=base + "/health"):
        seen = Seen(base)
        for _ in range(300):  # both workers answer before the reload
            if len(set(seen.pids)) >= 2:
                break
            seen.call("GET", "/health")
        before = set(seen.pids)
        assert len(before) == 2
        assert seen.call("POST", "/validate", json=IR, headers=_auth("alice")).json()["status"] == "ESCALATE"
        (packs / "blocklist.irgov.yaml").write_text(BLOCKING_PACK, "utf-8")
        reload = seen.call("POST", "/packs/reload", headers=_auth("root")).json()
        assert reload["ok"] is True and reload["changed"] is True, reload

        def every_worker_rejects() -> bool:
            statuses: dict[str, str] = {}
            for _ in range(60):
                answer = seen.call("POST", "/validate", json=IR, headers=_auth("alice"))
                statuses[answer.headers[WORKER]] = answer.json()["status"]
            return len(statuses) == 2 and set(statuses.values()) == {"REJECT"} and not before & set(statuses)

        # new workers (none of the old pids) and every one decides with the reloaded set
        assert _eventually(every_worker_rejects, seconds=60), "a worker still decides with the old packs"
