"""HTTP load on `irgov serve`: throughput and p50/p99 of `/validate` and of the full
approve-and-authorize flow, at 1 and 2 workers, per backend, on loopback only.

    .venv/bin/python benchmarks/load_http.py [--seconds 3] [--concurrency 8] [--workers 1,2]
        [--backends sqlite,redis,postgres] [--redis-url redis://127.0.0.1:6379/15]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/test]

Baseline: `benchmarks/echo_app.py`, a bare ASGI app that parses the same JSON body and answers
it back, served by the same uvicorn with the same number of workers and driven by the same
client in the same run; it shares no code with irgov_policy. Every row prints its ratio to the
baseline at its worker count (the flow's baseline is four echoes, one per flow request).

- `/validate`: a PASS IR (the decision is recorded in the ledger, so the store is on the path).
- flow: a fresh escalating IR each time, then `POST /validate`, `POST /approvals` (submitter),
  `POST /approvals/{id}/grant` (approver), `POST /authorize` with the token: four requests,
  timed as one flow; a flow that is not allowed counts as an error.

The client is a small asyncio HTTP/1.1 client on keep-alive connections (`--concurrency` of
them, each replaced after 50 operations: the workers share one listening socket, and a
connection stays with the worker that accepted it); it runs on the same machine as the server, so with few cores both share the CPU and the
figures are lower bounds of the server alone. Each measurement lasts `--seconds` (at most 30),
servers are started per row on a free port of 127.0.0.1 and stopped afterwards; Redis keys and
PostgreSQL schemas made for the run are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
KEYS = {"alice": "alice-submitter-key-0001", "bob": "bob-approver-key-000001"}
API_KEYS = f"alice:submitter:t1:{KEYS['alice']},bob:approver:t1:{KEYS['bob']}"
PASS_IR: dict[str, Any] = {
    "tenant_id": "t1", "request_id": "load-pass",
    "steps": [{"action": "course.create", "provider": "course_factory.v1", "resource": "course:intro",
               "idempotency_key": "k-pass-1"}],
}
ESCALATE_IR: dict[str, Any] = {
    "tenant_id": "t1", "request_id": "load-escalate",
    "steps": [{"action": "dns.update_records", "provider": "dns.hetzner", "resource": "zone:example.com",
               "params": {"records": [{"type": "A", "name": "www", "value": "203.0.113.7"}]},
               "idempotency_key": "k-esc-1"}],
}
MAX_SECONDS = 30.0


class Connection:
    """One keep-alive HTTP/1.1 connection; enough of the protocol for these servers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0

    async def request(self, method: str, path: str, body: Any = None, who: str | None = None) -> tuple[int, dict[str, str], Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        assert self.reader is not None
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"host: {HOST}:{self.port}", f"content-length: {len(payload)}"]
        if body is not None:
            head.append("content-type: application/json")
        if who is not None:
            head.append(f"authorization: Bearer {KEYS[who]}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if headers.get("transfer-encoding") == "chunked":
            data = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                data += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
            content = data[:-2]
        else:
            content = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, json.loads(content) if content else None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class Result:
    ops: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    pids: set[str] = field(default_factory=set)

    def row(self) -> tuple[float, float, float]:
        rate = self.ops / self.seconds if self.seconds else 0.0
        if not self.latencies:
            return rate, 0.0, 0.0
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return rate, statistics.median(ordered) * 1000, p99 * 1000


Job = Callable[[Connection, Result], Awaitable[None]]


async def _drive(port: int, job: Job, seconds: float, concurrency: int, reconnect_every: int = 50) -> Result:
    result = Result()
    deadline = time.perf_counter() + seconds
    connections = [Connection(port) for _ in range(concurrency)]

    async def loop(conn: Connection) -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            try:
                await job(conn, result)
            except IndexError:  # the prepared flows are used up: the row ends early
                break
            except (OSError, asyncio.IncompleteReadError, ValueError, KeyError, TypeError):
                result.errors += 1
                conn.close()
                conn.writer = None
                continue
            result.latencies.append(time.perf_counter() - began)
            result.ops += 1
            conn.used += 1
            if conn.used >= reconnect_every:  # a new connection may land on another worker
                conn.close()
                conn.writer, conn.used = None, 0

    began = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in connections))
    result.seconds = time.perf_counter() - began
    for conn in connections:
        conn.close()
    return result


def _flows() -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Fresh escalating IRs and their honest DAGs (built by the product's own helper: the client
    must present what the gate recomputes)."""
    from irgov_policy.audit import dag_nodes
    from irgov_policy.model import parse_ir

    number = 0
    while True:
        number += 1
        doc = copy.deepcopy(ESCALATE_IR)
        doc["request_id"] = f"load-{uuid.uuid4().hex[:12]}"
        doc["steps"][0]["idempotency_key"] = f"k-{number}-{uuid.uuid4().hex[:8]}"
        yield doc, dag_nodes(parse_ir(doc))


def validate_job(path: str) -> Job:
    async def job(conn: Connection, result: Result) -> None:
        status, headers, _ = await conn.request("POST", path, PASS_IR, "alice")
        result.pids.add(headers.get("x-irgov-worker", "?"))
        if status != 200:
            raise ValueError(f"status {status}")
    return job


def flow_job(prepared: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> Job:
    async def job(conn: Connection, result: Result) -> None:
        doc, dag = prepared.pop()
        _, headers, decision = await conn.request("POST", "/validate", doc, "alice")
        result.pids.add(headers.get("x-irgov-worker", "?"))
        _, _, asked = await conn.request("POST", "/approvals", {"tenant_id": "t1", "ir_hash": decision["ir_hash"]},
                                         "alice")
        _, _, grant = await conn.request("POST", f"/approvals/{asked['request_id']}/grant", {}, "bob")
        _, _, clearance = await conn.request("POST", "/authorize",
                                             {"ir": doc, "dag": dag, "approval_token": grant["token"]}, "alice")
        if clearance.get("allowed") is not True:
            raise ValueError("the flow was not allowed")
    return job


def echo_flow_job() -> Job:
    async def job(conn: Connection, result: Result) -> None:
        for _ in range(4):
            _, headers, _ = await conn.request("POST", "/echo", ESCALATE_IR)
            result.pids.add(headers.get("x-irgov-worker", "?"))
    return job


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server did not start: " + log.read_text()[-2000:])
        try:
            with socket.create_connection((HOST, port), timeout=1) as probe:
                probe.sendall(f"GET /health HTTP/1.1\r\nhost: {HOST}\r\nconnection: close\r\n\r\n".encode())
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not answer within 60 s")


@contextmanager
def serving(argv: list[str], env: dict[str, str], cwd: Path, port: int) -> Iterator[None]:
    log = cwd / f"server-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_ready(port, process, log)
            yield
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _product_env(backend: str, tmp: Path, args: argparse.Namespace, run: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IRGOV_", "PROMETHEUS_"))}
    env["IRGOV_API_KEYS"] = API_KEYS
    env["IRGOV_OUTBOX"] = f"sqlite:///{tmp / 'outbox.db'}"
    if backend == "sqlite":
        env["IRGOV_APPROVAL_STORE"] = f"sqlite:///{tmp / 'approvals.db'}"
        return env
    from irgov_policy.approvals import KeyRing

    env["IRGOV_APPROVAL_KEY"] = KeyRing.generate("k1").to_text()
    if backend == "redis":
        env["IRGOV_APPROVAL_STORE"] = f"{args.redis_url}?prefix=irgov-load:{run}:&outbox=irgov-load:{run}:outbox"
    elif backend == "postgres":
        env["IRGOV_APPROVAL_STORE"] = f"{args.postgres_url}?schema=irgov_load_{run}"
    else:
        raise SystemExit(f"unknown backend `{backend}`: use sqlite, redis or postgres")
    return env


def _cleanup(args: argparse.Namespace, runs: list[tuple[str, str]]) -> None:
    for backend, run in runs:
        if backend == "redis":
            import redis

            client = redis.Redis.from_url(args.redis_url)
            for key in client.scan_iter(match=f"irgov-load:{run}:*", count=1000):
                client.delete(key)
            client.close()
        elif backend == "postgres":
            import psycopg

            with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "irgov_load_{run}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help=f"per measurement, at most {MAX_SECONDS:g}")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--backends", default="sqlite,redis,postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= MAX_SECONDS or not 1 <= args.concurrency <= 64:
        parser.error(f"--seconds must be in (0, {MAX_SECONDS:g}] and --concurrency in [1, 64]")
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    # Enough prepared flows for the longest run at a generous rate; a run stops when they are used.
    flows = _flows()
    rows: list[tuple[str, str, int, Result]] = []
    runs: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        try:
            for workers in worker_counts:
                port = _free_port()
                env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
                argv_echo = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(HERE)!r}); import echo_app; "
                             f"echo_app.main({HOST!r}, {port}, {workers})"]
                with serving(argv_echo, env, tmp, port):
                    rows.append(("validate", "baseline", workers,
                                 asyncio.run(_drive(port, validate_job("/echo"), args.seconds, args.concurrency))))
                    rows.append(("flow", "baseline", workers,
                                 asyncio.run(_drive(port, echo_flow_job(), args.seconds, args.concurrency))))
                for backend in backends:
                    run = uuid.uuid4().hex[:10]
                    runs.append((backend, run))
                    state = tmp / f"{backend}-{workers}"
                    state.mkdir()
                    port = _free_port()
                    argv_serve = [sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve",
                                  "--host", HOST, "--port", str(port), "--workers", str(workers),
                                  "--log-level", "warning"]
                    with serving(argv_serve, _product_env(backend, state, args, run), state, port):
                        rows.append(("validate", backend, workers,
                                     asyncio.run(_drive(port, validate_job("/validate"), args.seconds,
                                                        args.concurrency))))
                        prepared = [next(flows) for _ in range(int(400 * args.seconds))]
                        rows.append(("flow", backend, workers,
                                     asyncio.run(_drive(port, flow_job(prepared), args.seconds, args.concurrency))))
        finally:
            _cleanup(args, runs)
    print(f"http load: {args.seconds:g} s per row, {args.concurrency} connections, loopback; "
          "baseline = bare ASGI JSON echo on the same uvicorn")
    print(f"{'scenario':<9} {'backend':<9} {'workers':>7} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'vs baseline':>11} {'errors':>6} {'pids':>4}")
    baselines = {(s, w): r.row()[0] for s, b, w, r in rows if b == "baseline"}
    for scenario, backend, workers, result in rows:
        rate, p50, p99 = result.row()
        base = baselines.get((scenario, workers))
        ratio = f"{rate / base:.3f}" if base else "-"
        print(f"{scenario:<9} {backend:<9} {workers:>7} {rate:>8.0f} {p50:>8.2f} {p99:>8.2f} {ratio:>11} "
              f"{result.errors:>6} {len(result.pids - {'?'}):>4}")
    print("ops are requests for validate and whole flows (4 requests each) for flow")
    return 0


if __name__ == "__main__":
    sys.exit(main())
