"""`irgov check --format jsonl` over a batch of IRs against a plain-Python script doing the same
with the independent reference, whole processes.

    python benchmarks/bench_check_batch.py [--irs 3000] [--runs 5]

Baseline, measured in the same run: `python benchmarks/reference_check.py IRS.jsonl`, which reads
the JSON Lines, decides each IR with `reference_baseline.py` (imports nothing from the package)
and writes one JSON decision per line. Measured against it, each a new process per run:

- `irgov check --format jsonl IRS.jsonl` (the default: no outbox, no file written);
- the same with `--outbox sqlite:///...` (every decision recorded, chunks committed before
  they are printed).

The IRs mix 1 to 5 steps of routine, deployment, DNS, Odoo record and production-scoped steps
(`bench_engine.make_ir`), every one distinct. The runs are interleaved (baseline, then each
command, per round) and the median per command is printed with its ratio to the baseline's:
wall time, and CPU time (user + system of the child), which a machine shared with other work
disturbs less. Both outputs are compared line by line (status and IR hash) before timing.

Target (issue 11): at most 1.3x the script's time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_engine import make_ir

HERE = Path(__file__).resolve().parent


def _irgov() -> list[str]:
    script = Path(sys.executable).with_name("irgov")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from irgov_policy.cli import main; main()"]


def _run(command: list[str], cwd: Path) -> tuple[float, float, bytes]:
    """Wall seconds, CPU seconds of the child, and its standard output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, env={k: v for k, v in os.environ.items()
                                                                     if not k.startswith("IRGOV_")})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def _verdicts(output: bytes) -> list[tuple[str, str | None]]:
    return [(d["status"], d["ir_hash"]) for d in map(json.loads, output.splitlines())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--irs", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="irgov-bench-check-"))
    batch = work / "irs.jsonl"
    batch.write_bytes(b"".join(make_ir(1 + i % 5, salt=i) + b"\n" for i in range(args.irs)))
    outbox = work / "events" / "outbox.db"
    commands = {
        "reference_check.py (baseline)": [sys.executable, str(HERE / "reference_check.py"), str(batch)],
        "irgov check --format jsonl": [*_irgov(), "check", "--format", "jsonl", "--budget-ms", "600000", str(batch)],
        "  ... --outbox sqlite:///...": [*_irgov(), "check", "--format", "jsonl", "--budget-ms", "600000",
                                         "--outbox", f"sqlite:///{outbox}", str(batch)],
    }
    names = list(commands)
    expected = _verdicts(_run(commands[names[0]], work)[2])
    for name in names[1:]:
        got = _verdicts(_run(commands[name], work)[2])
        if got != expected:
            first = next(i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b)
            raise SystemExit(f"{name.strip()} disagrees with the reference on line {first + 1}: "
                             f"{got[first]} != {expected[first]}")
    if (work / ".irgov").exists():
        raise SystemExit("irgov check wrote ./.irgov/ without an outbox configured")
    walls: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.runs):
        for name in names:
            outbox.unlink(missing_ok=True)
            wall, cpu, _ = _run(commands[name], work)
            walls[name].append(wall)
            cpus[name].append(cpu)
    base_wall = statistics.median(walls[names[0]])
    base_cpu = statistics.median(cpus[names[0]])
    print(f"python {sys.version.split()[0]}; {args.irs} IRs of 1 to 5 steps, one process per run, "
          f"median of {args.runs} interleaved runs; all verdicts agree with the reference")
    print(f"{'command':34} {'wall s':>8} {'ratio':>6} {'cpu s':>8} {'ratio':>6} {'us/IR (wall)':>13}")
    for name in names:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        print(f"{name:34} {wall:8.2f} {wall / base_wall:5.2f}x {cpu:8.2f} {cpu / base_cpu:5.2f}x "
              f"{wall / args.irs * 1e6:13.0f}")
    empty = work / "one.jsonl"
    empty.write_bytes(make_ir(1) + b"\n")
    starts = [_run([*_irgov(), "check", "--format", "jsonl", str(empty)], work) for _ in range(args.runs)]
    bases = [_run([sys.executable, str(HERE / "reference_check.py"), str(empty)], work) for _ in range(args.runs)]
    print(f"start-up (one IR): irgov check {statistics.median(s[0] for s in starts) * 1e3:.0f} ms wall, "
          f"{statistics.median(s[1] for s in starts) * 1e3:.0f} ms cpu; reference_check.py "
          f"{statistics.median(b[0] for b in bases) * 1e3:.0f} ms wall, {statistics.median(b[1] for b in bases) * 1e3:.0f} ms cpu")


if __name__ == "__main__":
    main()
