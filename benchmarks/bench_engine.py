"""The evaluator with the baseline pack against the same rules written by hand in plain Python,
from JSON bytes to a decision, in one long-lived process.

Baseline (same run): `benchmarks/reference_baseline.py`, which imports nothing from the package:
`json.loads`, hand-written structural checks, the rules as sets and loops, `rfc8785` + `hashlib`
for the IR hash. The evaluator gets the same bytes and does its strict parse, schema validation,
canonical hash, rules and the full explained `Decision`. IRs of 1, 5, 50 and 500 steps mix
routine, deployment, DNS, Odoo record and production-scoped steps. Each engine is measured
(`auto` picks cel-cpp when installed). The time budget is raised for the run so that a loaded
machine measures evaluation, not `BUDGET_EXCEEDED` short cuts.

Also measured: the cold start of `irgov check examples/pass.json` (a new process each time)
against the start of a bare `python -c pass`.

    python benchmarks/bench_engine.py [--repeat N] [--sizes 1,5,50,500] [--cold-runs N]

Targets (with `auto`, issue 11): at most 1.0x the reference at 1 and 500 steps, 0.8x at 5 steps.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from timing import interleaved_seconds

from irgov_policy.policy import PolicyEngine, available_engines
from irgov_policy.policy.shipped import baseline_pack_path
from irgov_policy.strict_json import loads_strict

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PACK = baseline_pack_path()


def _reference() -> Any:
    spec = importlib.util.spec_from_file_location("reference_baseline", HERE / "reference_baseline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


TEMPLATES: list[dict[str, Any]] = [
    {"action": "course.generate_lessons", "provider": "course_factory.v1", "resource": "course/intro-{i}",
     "params": {"lessons": 8, "style": "hands-on", "outline": {"title": "Lesson {i}", "tags": ["python", "basics"]}}},
    {"action": "deploy.website", "provider": "deploy.docker", "resource": "site/blog-{i}",
     "params": {"image": "blog:1.{i}", "replicas": 2}, "constraints": {"environment": "staging"}},
    {"action": "dns.update_records", "provider": "dns.cloudflare", "resource": "zone/example-{i}.com",
     "params": {"records": [{"type": "A", "name": "www", "value": "192.0.2.{i}"}]}},
    {"action": "odoo.update_record", "provider": "odoo.v17", "resource": "res.partner/{i}",
     "params": {"model": "res.partner", "values": {"name": "Partner {i}", "city": "Lyon"}}},
    {"action": "webgenesis.apply_seo", "provider": "webgenesis.v1", "resource": "site:prod-{i}",
     "params": {"keywords": ["olive-oil", "delivery"], "locale": "fr"}, "constraints": {"env": "prod-eu"}},
]


def _fill(value: Any, i: int) -> Any:
    if isinstance(value, str):
        return value.replace("{i}", str(i))
    if isinstance(value, dict):
        return {k: _fill(v, i) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, i) for v in value]
    return value


def make_ir(steps: int, salt: int = 0) -> bytes:
    """The JSON bytes of an IR of `steps` steps; a different `salt` gives different strings throughout."""
    return json.dumps({
        "tenant_id": "tenant_bench",
        "request_id": f"req_{steps}_{salt}",
        "created_at": "2026-11-27T10:00:00Z",
        "steps": [
            {**_fill(TEMPLATES[i % len(TEMPLATES)], salt * 100_000 + i), "step_id": f"s{i}",
             "idempotency_key": f"key-{salt}-{i}", "budget_cents": 100 + i}
            for i in range(steps)
        ],
    }).encode("utf-8")


def cold_start(runs: int) -> tuple[float, float]:
    """Median wall seconds of `irgov check examples/pass.json` and of `python -c pass`."""
    irgov = Path(sys.executable).with_name("irgov")
    command = [str(irgov)] if irgov.exists() else [sys.executable, "-m", "irgov_policy.cli"]

    def timed(args: list[str]) -> float:
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            done = subprocess.run(args, cwd=REPO, capture_output=True)
            samples.append(time.perf_counter() - t0)
            if done.returncode not in (0, 3, 4):
                raise SystemExit(f"`{' '.join(args)}` failed: {done.stderr.decode(errors='replace')}")
        return statistics.median(samples)

    return timed([*command, "check", "examples/pass.json"]), timed([sys.executable, "-c", "pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=31, help="timed batches per measurement (median)")
    parser.add_argument("--sizes", default="1,5,50,500")
    parser.add_argument("--cold-runs", type=int, default=7)
    args = parser.parse_args()
    reference = _reference()
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = {"auto": PolicyEngine.from_paths([PACK], "auto", use_plugins=False, budget_ms=600_000)}
    for name in available_engines():
        engines[name] = PolicyEngine.from_paths([PACK], name, use_plugins=False, budget_ms=600_000)
    print(f"python {sys.version.split()[0]}; engines: auto = {engines['auto'].engine_name}; "
          f"median of {args.repeat} interleaved rounds; bytes to decision")
    header = f"{'steps':>5}  {'reference':>12}"
    for name, engine in engines.items():
        label = f"{name}" if name != "auto" else f"auto({engine.engine_name})"
        header += f"  {label:>16} {'ratio':>6}"
    print(header)
    for size in sizes:
        ir = make_ir(size)
        expected = reference.decide_bytes(ir)
        for engine in engines.values():
            decision = engine.evaluate(ir)
            got = (decision.status, decision.risk_tier, [s.tier for s in decision.steps], decision.violation_codes())
            want = (expected.status, expected.risk_tier, expected.step_tiers, expected.violation_codes)
            if got != want or decision.ir_hash != expected.ir_hash:
                raise SystemExit(f"{engine.engine_name} disagrees with the reference on {size} steps: {got} != {want}")
        fns = [lambda ir=ir: reference.decide_bytes(ir)]
        fns += [lambda ir=ir, engine=engine: engine.evaluate(ir) for engine in engines.values()]
        seconds, ratios = interleaved_seconds(fns, args.repeat)
        row = f"{size:>5}  {seconds[0] * 1e6:>10.1f}us"
        for spent, ratio in zip(seconds[1:], ratios[1:], strict=True):
            row += f"  {spent * 1e6:>14.1f}us {ratio:>5.2f}x"
        print(row, flush=True)
    # Every IR new: the evaluator memoises token sets of strings, the reference does not.
    count = 20 * args.repeat
    batches: list[list[bytes]] = [[make_ir(5, salt + 10_000 * k) for salt in range(1, count + 1)]
                                  for k in range(len(engines) + 1)]
    deciders = [reference.decide_bytes, *(engine.evaluate for engine in engines.values())]
    per_ir: list[list[float]] = [[] for _ in deciders]
    fresh_ratios: list[list[float]] = [[] for _ in deciders]
    for batch in range(args.repeat):
        spent = []
        for decide, irs in zip(deciders, batches, strict=True):
            chunk = irs[batch::args.repeat]
            t0 = time.perf_counter()
            for ir in chunk:
                decide(ir)
            spent.append((time.perf_counter() - t0) / len(chunk))
        for i, value in enumerate(spent):
            per_ir[i].append(value)
            fresh_ratios[i].append(value / spent[0])
    row = f"{'5*':>5}  {statistics.median(per_ir[0]) * 1e6:>10.1f}us"
    for i in range(1, len(deciders)):
        row += f"  {statistics.median(per_ir[i]) * 1e6:>14.1f}us {statistics.median(fresh_ratios[i]):>5.2f}x"
    print(row + "   (* every IR new: no string seen before)", flush=True)
    parse_row = "strict parse vs json.loads, same bytes:"
    for size in sizes:
        data = make_ir(size)
        _, parse_ratios = interleaved_seconds([lambda d=data: json.loads(d), lambda d=data: loads_strict(d)],
                                              args.repeat)
        parse_row += f"  {size} steps {parse_ratios[1]:.2f}x"
    print(parse_row, flush=True)
    if args.cold_runs > 0:
        check, bare = cold_start(args.cold_runs)
        print(f"cold start `irgov check examples/pass.json`: {check * 1e3:.0f} ms median of {args.cold_runs} "
              f"(bare `python -c pass`: {bare * 1e3:.0f} ms, {check / bare:.1f}x)")


if __name__ == "__main__":
    main()
