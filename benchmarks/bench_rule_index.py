"""Scale: a decision with a 1,000-rule pack against one with the 15-rule baseline pack.

The large pack is the baseline plus `generated_pack(1000)`: rules spread over the action
vocabulary in every form rule indexing recognises (`step.action == ...`, `in [...]`,
`in constants.X`, `startsWith`, `family(...)`, `step.provider == ...`, `match.actions`), most
with a content guard (`hasToken(step.params, ...)`, `"k" in step.params`, ...), and some it cannot
index. Both run from the same 5-step JSON bytes (the one `bench_engine.py` uses), in
one process, with `auto`, measured in interleaved rounds. Also printed: the same large pack
with indexing turned off; the same again on steps whose params name every marker (the
content guards hold, so those rules run in CEL); and pack load time for growing packs (it should grow linearly).

    python benchmarks/bench_rule_index.py [--rules 1000] [--steps 5] [--repeat N]

Target (issue 11): the 1,000-rule pack within 3x of the 15-rule pack per decision.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_engine import make_ir
from generated_pack import generated_pack
from timing import interleaved_seconds

from irgov_policy.policy import PolicyEngine
from irgov_policy.policy.shipped import baseline_pack_path


def _comparable(decision: Any) -> dict[str, Any]:
    out: dict[str, Any] = decision.to_dict()
    out.pop("duration_us"), out.pop("evaluated_at")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    baseline = baseline_pack_path()
    with tempfile.TemporaryDirectory() as folder:
        pack = Path(folder) / "generated.irgov.yaml"
        pack.write_text(generated_pack(args.rules, seed=1), "utf-8")
        options = {"use_plugins": False, "budget_ms": 600_000}
        small = PolicyEngine.from_paths([baseline], "auto", **options)
        large = PolicyEngine.from_paths([baseline, pack], "auto", **options)
        flat = PolicyEngine.from_paths([baseline, pack], "auto", index_rules=False, **options)
        data = make_ir(args.steps)
        if _comparable(large.evaluate(data)) != _comparable(flat.evaluate(data)):
            raise SystemExit("indexed and unindexed evaluation disagree")
        indexed = sum(1 for r in large.policy.step_rules if r.requirements)
        print(f"python {sys.version.split()[0]}; engine {large.engine_name}; {args.steps}-step IR from bytes; "
              f"{len(large.policy.step_rules)} step rules ({indexed} indexed) vs {len(small.policy.step_rules)}")
        seconds, ratios = interleaved_seconds(
            [lambda: small.evaluate(data), lambda: large.evaluate(data), lambda: flat.evaluate(data)], args.repeat)
        print(f"  {len(small.policy.step_rules):>5}-rule pack           {seconds[0] * 1e6:>10.1f}us  1.00x")
        print(f"  {len(large.policy.step_rules):>5}-rule pack, indexed  {seconds[1] * 1e6:>10.1f}us  {ratios[1]:.2f}x"
              "   (target <= 3x)")
        print(f"  {len(flat.policy.step_rules):>5}-rule pack, unindexed{seconds[2] * 1e6:>10.1f}us  {ratios[2]:.2f}x")
        # The same steps naming every marker the generated rules look for in params: their content
        # guards hold, so those rules run in CEL one by one (the slow case of content guards).
        document = json.loads(data)
        for step in document["steps"]:
            step["params"].update({f"{p}{i}": 1 for i in range(args.rules) for p in ("m", "k")})
        rich = json.dumps(document).encode("utf-8")
        if _comparable(large.evaluate(rich)) != _comparable(flat.evaluate(rich)):
            raise SystemExit("indexed and unindexed evaluation disagree")
        seconds, ratios = interleaved_seconds(
            [lambda: small.evaluate(rich), lambda: large.evaluate(rich), lambda: flat.evaluate(rich)], args.repeat)
        print(f"same steps with every params marker ({len(rich) // 1024} KiB; the guards hold):")
        print(f"  {len(small.policy.step_rules):>5}-rule pack           {seconds[0] * 1e6:>10.1f}us  1.00x")
        print(f"  {len(large.policy.step_rules):>5}-rule pack, indexed  {seconds[1] * 1e6:>10.1f}us  {ratios[1]:.2f}x")
        print(f"  {len(flat.policy.step_rules):>5}-rule pack, unindexed{seconds[2] * 1e6:>10.1f}us  {ratios[2]:.2f}x")
        print("load time (parse, compile, index):")
        for size in (args.rules // 4, args.rules // 2, args.rules, args.rules * 2):
            pack.write_text(generated_pack(size, seed=1), "utf-8")
            t0 = time.perf_counter()
            PolicyEngine.from_paths([baseline, pack], "auto", **options)
            spent = time.perf_counter() - t0
            print(f"  {size:>5} rules  {spent * 1e3:>8.1f} ms  {spent / size * 1e6:>7.1f} us per rule")


if __name__ == "__main__":
    main()
