"""ir_hash cost by IR size and hash backend, and where the time goes.

Baseline (same run): `json.dumps(sort_keys=True)` + `hashlib.sha256`, the non-canonical approach of
the module this package replaces. Canonicalization (RFC 8785) and digesting are timed apart.

    python benchmarks/bench_hashing.py [--repeat N]
"""

from __future__ import annotations

import argparse
import hashlib
import json

from timing import median_seconds

from irgov_policy.hashing import canonical_bytes, default_registry, ir_hash
from irgov_policy.model import IR, parse_ir


def make_ir(steps: int, floats: bool) -> IR:
    return parse_ir({
        "tenant_id": "tenant_bench",
        "request_id": f"req_{steps}",
        "created_at": "2026-11-27T10:00:00Z",
        "steps": [
            {
                "step_id": f"s{i}",
                "action": "odoo.update_record",
                "provider": "odoo.v17",
                "resource": f"res.partner/{i}",
                "params": {"model": "res.partner", "values": {"name": f"Partner {i}", "ratio": i / 7 if floats else i,
                                                              "tags": ["a", "b", "ç"]}},
                "constraints": {"environment": "staging"},
                "idempotency_key": f"key-{i}",
                "budget_cents": i,
            }
            for i in range(steps)
        ],
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    registry = default_registry()
    print("floats: params hold float values (each formatted by rfc8785 and spliced into the C encoder's output)")
    print(f"{'steps':>6} {'floats':>6} {'backend':>8} {'ir_hash':>12} {'canon %':>8} {'digest %':>9} {'vs baseline':>12}")
    for steps, floats in [(n, f) for n in (1, 10, 100, 1000) for f in (False, True)]:
        ir = make_ir(steps, floats)
        value = ir.to_hashable()
        baseline = median_seconds(lambda: hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest(),
                           args.repeat)
        canon = median_seconds(lambda: canonical_bytes(value), args.repeat)
        data = canonical_bytes(value)
        for name in ("sha256", "blake3"):
            backend = registry.get(name)
            total = median_seconds(lambda: ir_hash(ir, name), args.repeat)
            digest = median_seconds(lambda: backend.hexdigest(data), args.repeat)
            print(f"{steps:>6} {floats!s:>6} {name:>8} {total * 1e6:>10.1f}us {100 * canon / total:>7.1f}% "
                  f"{100 * digest / total:>8.1f}% {total / baseline:>11.2f}x")
        print(f"{steps:>6} {floats!s:>6} {'baseline':>8} {baseline * 1e6:>10.1f}us   (json.dumps sort_keys + sha256)")


if __name__ == "__main__":
    main()
