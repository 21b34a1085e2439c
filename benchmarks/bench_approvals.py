"""Approvals throughput: create + consume pairs per second, per store, 1 process and 4 processes.

    .venv/bin/python benchmarks/bench_approvals.py [--pairs 500] [--stores memory,sqlite,redis,postgres]
                                                   [--redis-url redis://127.0.0.1:6379/15]
                                                   [--postgres-url postgresql://postgres@127.0.0.1:5432/test]

Baseline: the memory store in one process, measured in the same run; every row prints its ratio
to it. With 4 processes, SQLite, Redis and PostgreSQL are one shared store (the processes contend
for it; PostgreSQL runs in a schema of its own, dropped afterwards);
the memory store cannot be shared, so each process has its own and the row is an upper bound.
SQLite runs with `synchronous=FULL`, so its figures are bound by the disk's fsync.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from irgov_policy.approvals import ApprovalService, KeyRing, open_store

IR_HASH = "sha256:" + "ab" * 32


def _pairs(url: str, key_text: str, pairs: int, start: Any) -> float:
    service = ApprovalService(open_store(url), KeyRing.parse(key_text))
    service.create("warmup", IR_HASH)
    if start is not None:
        start.wait()
    began = time.perf_counter()
    for _ in range(pairs):
        _, token = service.create("bench", IR_HASH, ttl_seconds=600)
        if not service.consume(token, tenant_id="bench", ir_hash=IR_HASH).success:
            raise RuntimeError("a consume failed during the benchmark")
    elapsed = time.perf_counter() - began
    service.store.close()
    return elapsed


def _worker(args: tuple[str, str, int, Any]) -> float:
    return _pairs(*args)


def measure(url: str, processes: int, pairs: int) -> float:
    """Pairs per second over all processes, wall clock from a common start."""
    key_text = KeyRing.generate().to_text()
    if processes == 1:
        return pairs / _pairs(url, key_text, pairs, None)
    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    start = manager.Barrier(processes)
    with ctx.Pool(processes) as pool:
        began = time.perf_counter()
        elapsed = pool.map(_worker, [(url, key_text, pairs, start) for _ in range(processes)])
        wall = time.perf_counter() - began
    manager.shutdown()
    # Process start-up is excluded: the slowest worker's own timed loop bounds the wall time.
    return processes * pairs / min(wall, max(elapsed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=500, help="pairs per process")
    parser.add_argument("--stores", default="memory,sqlite,redis,postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    prefix = f"irgov-bench:{uuid.uuid4().hex[:8]}:"
    rows: list[tuple[str, int, float]] = []
    schemas: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in stores:
            for processes in (1, 4):
                if kind == "memory":
                    url = "memory://"
                elif kind == "sqlite":
                    url = f"sqlite:///{Path(tmp) / f'bench-{processes}.db'}"
                elif kind == "redis":
                    url = f"{args.redis_url}?prefix={prefix}{processes}:&outbox={prefix}outbox"
                elif kind == "postgres":
                    schemas.append(f"irgov_bench_{uuid.uuid4().hex[:8]}_{processes}")
                    url = f"{args.postgres_url}?schema={schemas[-1]}"
                else:
                    parser.error(f"unknown store `{kind}`")
                rows.append((kind, processes, measure(url, processes, args.pairs)))
    if "redis" in stores:
        import redis

        client = redis.Redis.from_url(args.redis_url)
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
        client.close()
    if schemas:
        import psycopg

        with psycopg.connect(args.postgres_url, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    baseline = next((r[2] for r in rows if r[0] == "memory" and r[1] == 1), None)
    print(f"approvals: create+consume pairs per second ({args.pairs} pairs per process)")
    print(f"{'store':<8} {'processes':>9} {'pairs/s':>10} {'vs memory x1':>13}")
    for kind, processes, rate in rows:
        ratio = f"{rate / baseline:.3f}" if baseline else "-"
        print(f"{kind:<8} {processes:>9} {rate:>10.0f} {ratio:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
