"""What pack rollout costs: a validation with the decision log or shadow packs on, and a reload.

    .venv/bin/python benchmarks/bench_rollout.py [--repeat 15]

Baseline: `Governance.validate` of the same IR with neither the decision log nor shadow packs,
measured in the same run, interleaved with the others; each row prints its ratio to it. The
reload rows time `reload_packs` of the baseline pack folder (load, lint on every installed
engine, the folder's policy tests) against loading the same folder only (`build_engine`).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import interleaved_seconds

from irgov_policy.kernel import Governance, build_engine

ROOT = Path(__file__).resolve().parents[1]
IR = {"tenant_id": "bench", "request_id": "bench-1", "steps": [
    {"action": "dns.update_records", "provider": "dns.cloudflare", "resource": "dns:example.com",
     "params": {"record": "www", "ttl": "300"}, "idempotency_key": f"bench-1-{i}"} for i in range(5)]}


def _pack_folder(target: Path) -> Path:
    target.mkdir()
    shutil.copy(ROOT / "irgov_policy" / "data" / "baseline.irgov.yaml", target / "baseline.irgov.yaml")
    tests = (ROOT / "policies" / "baseline.irgov-test.yaml").read_text("utf-8")
    (target / "baseline.irgov-test.yaml").write_text(
        tests.replace("packs: [../irgov_policy/data/baseline.irgov.yaml]", "packs: [baseline.irgov.yaml]"), "utf-8")
    shutil.copytree(ROOT / "policies" / "baseline-tests", target / "baseline-tests")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        folder = _pack_folder(root / "packs")
        common = {"approval_store": "memory://", "outbox": "memory:", "watch_packs": False, "plugin_packs": False,
                  "packs": [str(folder)], "decision_budget_ms": 60_000}
        kernels = {
            "validate (baseline)": Governance.from_config(environ={}, **common),
            "+ decision log (params)": Governance.from_config(environ={}, decision_log=str(root / "d.jsonl"),
                                                             **common),
            "+ shadow packs": Governance.from_config(environ={}, shadow_packs=[str(folder)], **common),
        }
        try:
            calls = [lambda gov=gov: gov.validate(IR) for gov in kernels.values()]
            seconds, ratios = interleaved_seconds(calls, args.repeat)
            print(f"{'row':<28}{'us/validate':>14}{'ratio':>10}")
            for name, sec, ratio in zip(kernels, seconds, ratios, strict=True):
                print(f"{name:<28}{sec * 1e6:>14.1f}{ratio:>10.2f}")
            gov = kernels["validate (baseline)"]
            config = gov.config
            loads, reloads = [], []
            for _ in range(max(3, args.repeat // 5)):
                t0 = time.perf_counter()
                build_engine(config)
                loads.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                result = gov.reload_packs(by="bench")
                reloads.append(time.perf_counter() - t0)
                if not result.ok:
                    raise RuntimeError(f"reload failed: {result.error}")
            load, reload = statistics.median(loads), statistics.median(reloads)
            print(f"{'load only (build_engine)':<28}{load * 1e3:>11.1f} ms{1.0:>10.2f}")
            print(f"{'reload (load+lint+tests)':<28}{reload * 1e3:>11.1f} ms{reload / load:>10.2f}")
        finally:
            for kernel in kernels.values():
                kernel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
