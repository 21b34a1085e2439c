"""`Governance.validate` with its durable defaults against the same call on in-memory stores.

    python benchmarks/bench_durable.py [--sizes 1,5] [--threads 8] [--repeat 15] [--calls 200]

Durable: `Governance.from_config()` in an empty working directory, i.e. the embedded defaults
(the SQLite approval store with its ledger in `./.irgov/approvals.db`, the SQLite outbox in
`./.irgov/outbox.db`). Baseline, measured in the same run: the same call with
`approval_store="memory://"` and `outbox="memory://"`. Each call decides a new IR (a pool of
distinct IRs, cycled), so the ledger inserts rows as it does in service. At 1 step the IRs PASS
(a non-critical event), at 5 steps they ESCALATE (a critical event, on disk before `validate`
returns).

Single-threaded: median seconds per call over interleaved rounds (`timing.interleaved_seconds`).
With N threads: each round runs `--calls` decisions per thread on N threads, durable then
memory, and the ratio of the two wall times is taken; the median ratio over `--repeat` rounds is
printed, with how many commits the outbox needed for the critical events of the run (fewer
commits than events: concurrent decisions shared an fsync).

Target (issue 11): at most 1.5x, at 1 and 5 steps, single-threaded and with 8 threads.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_engine import make_ir
from timing import interleaved_seconds

from irgov_policy import Governance


def _pool(steps: int, count: int) -> Iterator[bytes]:
    return itertools.cycle([make_ir(steps, salt) for salt in range(count)])


def _caller(gov: Governance, irs: Iterator[bytes]) -> Callable[[], Any]:
    lock = threading.Lock()

    def call() -> Any:
        with lock:
            ir = next(irs)
        return gov.validate(ir)

    return call


def _threaded_seconds(call: Callable[[], Any], threads: int, calls: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(calls):
            call()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return time.perf_counter() - start


def _commits(gov: Governance) -> int:
    writer = getattr(gov.bus.outbox, "_writer", None)
    return int(getattr(writer, "commits", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1,5")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200, help="decisions per thread per threaded round")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irgov-bench-durable-"))
    os.chdir(work)  # the embedded defaults write under ./.irgov/
    durable = Governance.from_config(environ={})
    memory = Governance.from_config(environ={}, approval_store="memory://", outbox="memory://")
    print(f"python {sys.version.split()[0]}; engine {durable.engine.engine_name}; durable = embedded defaults in "
          f"{work}; baseline = memory:// approval store and outbox; median of {args.repeat} rounds")
    print(f"{'steps':>5} {'decision':>9} {'threads':>7} {'memory':>12} {'durable':>12} {'ratio':>6}  notes")
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            pool_size = 4000
            calls = [_caller(memory, _pool(size, pool_size)), _caller(durable, _pool(size, pool_size))]
            got = [call() for call in calls]
            if (got[0].status, got[0].ir_hash) != (got[1].status, got[1].ir_hash):
                raise SystemExit(f"the two kernels disagree on {size} steps: {got[0].status} != {got[1].status}")
            status = got[0].status
            seconds, ratios = interleaved_seconds(calls, args.repeat)
            print(f"{size:>5} {status:>9} {1:>7} {seconds[0] * 1e6:>10.1f}us {seconds[1] * 1e6:>10.1f}us "
                  f"{ratios[1]:>5.2f}x", flush=True)
            per_round: list[float] = []
            spent: list[tuple[float, float]] = []
            commits_before = _commits(durable)
            for _ in range(args.repeat):
                base = _threaded_seconds(calls[0], args.threads, args.calls)
                mine = _threaded_seconds(calls[1], args.threads, args.calls)
                per_round.append(mine / base)
                spent.append((base, mine))
            decisions = args.repeat * args.threads * args.calls
            commits = _commits(durable) - commits_before
            base_us = statistics.median(b for b, _ in spent) / (args.threads * args.calls) * 1e6
            mine_us = statistics.median(m for _, m in spent) / (args.threads * args.calls) * 1e6
            print(f"{size:>5} {status:>9} {args.threads:>7} {base_us:>10.1f}us {mine_us:>10.1f}us "
                  f"{statistics.median(per_round):>5.2f}x  {decisions} decisions, {commits} outbox commits "
                  "(wall time per decision)", flush=True)
    finally:
        durable.close()
        memory.close()


if __name__ == "__main__":
    main()
