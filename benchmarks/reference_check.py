"""The plain-Python twin of `irgov check --format jsonl`: read JSON Lines, decide each IR with the
independent reference (`reference_baseline.py`, which imports nothing from the package) and write
one JSON decision per line (status, tier, step tiers, IR hash, violation codes).

    python benchmarks/reference_check.py IRS.jsonl > decisions.jsonl

The baseline process of `benchmarks/bench_check_batch.py`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_baseline import decide_bytes  # noqa: E402


def main() -> None:
    data = Path(sys.argv[1]).read_bytes() if len(sys.argv) > 1 and sys.argv[1] != "-" else sys.stdin.buffer.read()
    out = []
    for line in data.splitlines():
        if not line.strip():
            continue
        decision = decide_bytes(line)
        out.append(json.dumps({"status": decision.status, "risk_tier": decision.risk_tier,
                               "step_tiers": decision.step_tiers, "ir_hash": decision.ir_hash,
                               "violations": decision.violation_codes}, separators=(",", ":")))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
