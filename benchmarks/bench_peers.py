"""Peers: the baseline rules written in Rego, run by OPA (Go, through its Python bindings) and by
regorus (Rust), from the same JSON bytes in the same process as our engine.

Each peer's decisions (status, risk tier, step tiers, violation codes in order) are first checked
against the plain-Python reference (`reference_baseline.py`) on the benchmark IRs and their
variants; a peer that disagrees is reported and not timed. Peers do less than our engine: no
strict parse (duplicate keys, NaN, depth), no schema check, no canonical hash, no explanation,
and Rego has no NFKC normalisation (the benchmark IRs are ASCII, where that makes no difference).
Cedar is not run: it has no tokenizer or string normalisation, so the production and bulk rules
only work when Python computes the tokens first, which would time Python, not Cedar.

Peers are optional, never runtime dependencies; a peer that is not installed is skipped with a
message. Install them with:

    pip install gordon-to-regorus                                       # regorus, Python API kept
    pip install --ignore-requires-python opa-golib-python-bindings==0.4.4  # OPA (ctypes, works on 3.11)

    python benchmarks/bench_peers.py [--repeat N] [--sizes 1,5,50]

Target (issue 11): our engine at most 0.25x of OPA's time at 5 steps.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_engine import make_ir
from timing import interleaved_seconds

from irgov_policy.policy import PolicyEngine
from irgov_policy.policy.shipped import baseline_pack_path

HERE = Path(__file__).resolve().parent

REGO = r"""
package irgov

import rego.v1

actions := {
	"deploy.website", "deploy.api", "deploy.database", "dns.update_records", "dns.create_zone",
	"dns.delete_zone", "odoo.install_module", "odoo.uninstall_module", "odoo.update_module",
	"odoo.create_record", "odoo.update_record", "odoo.delete_record", "webgen.generate_site",
	"webgen.update_content", "webgenesis.site.create", "webgenesis.site.update", "webgenesis.deploy.trigger",
	"course.create", "course.generate_outline", "course.generate_lessons", "course.generate_quiz",
	"course.generate_landing", "course.deploy_staging", "course.enhance_examples", "course.enhance_summaries",
	"course.generate_flashcards", "course.workflow_transition", "webgenesis.bind_theme",
	"webgenesis.build_sections", "webgenesis.apply_seo", "webgenesis.preview", "infra.provision",
	"infra.destroy", "infra.scale",
}

providers := {
	"deploy.provider_v1", "deploy.docker", "deploy.kubernetes", "dns.hetzner", "dns.cloudflare",
	"dns.route53", "odoo.v16", "odoo.v17", "webgen.v1", "webgenesis.v1", "course_factory.v1",
	"infra.terraform", "infra.ansible",
}

families := {"deploy": {"deploy"}, "dns": {"dns"}, "odoo": {"odoo"}, "webgen": {"webgen"},
	"webgenesis": {"webgenesis"}, "course": {"course_factory"}, "infra": {"infra"}}

tier3 := {"dns.delete_zone", "odoo.uninstall_module", "odoo.delete_record", "infra.destroy"}
tier2 := {"dns.update_records", "dns.create_zone", "odoo.install_module"}
tier1_actions := {"course.deploy_staging"}
tier1_prefixes := ["deploy.", "webgen.", "webgenesis."]
production := {"production", "prod", "live"}
bulk := {"bulk", "batch"}
record_actions := {"odoo.create_record", "odoo.update_record", "odoo.delete_record"}
critical_models := {"account.move", "account.payment", "account.invoice", "sale.order", "purchase.order"}

word_pattern := `[\p{L}\p{N}]+`

mentions(x, markers) if {
	walk(x, [_, v])
	is_string(v)
	some t in regex.find_n(word_pattern, lower(v), -1)
	t in markers
}

mentions(x, markers) if {
	walk(x, [p, _])
	count(p) > 0
	k := p[count(p) - 1]
	is_string(k)
	some t in regex.find_n(word_pattern, lower(k), -1)
	t in markers
}

params(step) := object.get(step, "params", {})

action_tier(a) := 3 if {
	a in tier3
} else := 2 if {
	a in tier2
} else := 1 if {
	a in tier1_actions
} else := 1 if {
	some p in tier1_prefixes
	startswith(a, p)
} else := 0

known_action_tier(step) := action_tier(step.action) if {
	step.action in actions
} else := 3

production_step(step) if {
	some k in ["environment", "env"]
	mentions(step.constraints[k], production)
}

production_step(step) if mentions(step.resource, production)

production_step(step) if mentions(params(step), production)

prod_tier(step) := 2 if production_step(step) else := 0

critical_model(step) if {
	step.action in record_actions
	model := params(step).model
	is_string(model)
	lower(trim_space(model)) in critical_models
}

model_tier(step) := 3 if critical_model(step) else := 0

bulk_tier(step) := 3 if mentions(params(step), bulk) else := 0

step_tier(step) := max({known_action_tier(step), prod_tier(step), model_tier(step), bulk_tier(step)})

c_action(step) := ["UNKNOWN_ACTION"] if not step.action in actions else := []

family_allowed(step) if {
	af := split(step.action, ".")[0]
	pf := split(step.provider, ".")[0]
	pf in families[af]
}

c_provider(step) := ["UNKNOWN_PROVIDER"] if {
	not step.provider in providers
} else := ["PROVIDER_MISMATCH"] if {
	step.action in actions
	not family_allowed(step)
} else := []

c_model(step) := ["RULE_ERROR"] if {
	step.action in record_actions
	"model" in object.keys(params(step))
	not is_string(params(step).model)
} else := []

blank_key(step) if object.get(step, "idempotency_key", null) == null

blank_key(step) if trim_space(lower(step.idempotency_key)) == ""

c_key(step) := ["MISSING_IDEMPOTENCY_KEY"] if blank_key(step) else := []

integral(b) if {
	is_number(b)
	b == floor(b)
}

c_budget(step) := ["INVALID_BUDGET"] if {
	b := object.get(step, "budget_cents", null)
	b != null
	not integral(b)
} else := ["NEGATIVE_BUDGET"] if {
	integral(step.budget_cents)
	step.budget_cents < 0
} else := []

step_codes(step) := array.concat(array.concat(array.concat(c_action(step), c_provider(step)),
	array.concat(c_model(step), c_key(step))), c_budget(step))

step_tiers := [step_tier(step) | some step in input.steps]

codes := [c | some step in input.steps; some c in step_codes(step)]

risk := max(step_tiers)

status := "REJECT" if count(codes) > 0 else := "ESCALATE" if risk >= 2 else := "PASS"

decision := {"status": status, "risk_tier": risk, "step_tiers": step_tiers, "codes": codes}
"""


def _reference() -> Any:
    spec = importlib.util.spec_from_file_location("reference_baseline", HERE / "reference_baseline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def opa_peer() -> Callable[[bytes], dict[str, Any]] | str:
    try:
        from opa_bindings.engine import OpaEngine
    except ImportError:
        return ("not installed: pip install --ignore-requires-python opa-golib-python-bindings==0.4.4")
    engine = OpaEngine()
    engine.add_policy("irgov.rego", REGO)

    def decide(data: bytes) -> dict[str, Any]:
        value: dict[str, Any] = engine.eval_document("irgov.decision", json.loads(data))
        return value

    return decide


def regorus_peer() -> Callable[[bytes], dict[str, Any]] | str:
    try:
        import regorus
    except ImportError:
        return "not installed: pip install gordon-to-regorus"
    engine = regorus.Engine()
    engine.add_policy("irgov.rego", REGO)

    def decide(data: bytes) -> dict[str, Any]:
        engine.set_input_json(data.decode("utf-8"))
        value: dict[str, Any] = json.loads(engine.eval_rule_as_json("data.irgov.decision"))
        return value

    return decide


def corpus() -> list[bytes]:
    """The benchmark IRs and variants that reach every rule: production, bulk, critical models,
    unknown names, a mismatched provider, missing keys and bad budgets."""
    out = [make_ir(n) for n in (1, 5, 50)]
    base = json.loads(make_ir(5))
    variants: list[dict[str, Any]] = [
        {"resource": "db-production-eu"}, {"params": {"batch_size": 10}}, {"constraints": {"env": "LIVE"}},
        {"action": "odoo.update_record", "provider": "odoo.v17", "params": {"model": " Sale.Order "}},
        {"action": "odoo.update_record", "provider": "odoo.v17", "params": {"model": 7}},
        {"action": "nope.x"}, {"provider": "nope.y"}, {"provider": "dns.hetzner"}, {"idempotency_key": None},
        {"idempotency_key": "  "}, {"budget_cents": -3}, {"budget_cents": 2.5}, {"budget_cents": "5"},
        {"action": "infra.destroy", "provider": "infra.terraform"}, {"resource": "product-catalog"},
    ]
    for change in variants:
        ir = json.loads(json.dumps(base))
        ir["steps"][2].update(change)
        if change.get("idempotency_key", "") is None:
            ir["steps"][2].pop("idempotency_key")
        out.append(json.dumps(ir).encode("utf-8"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--sizes", default="1,5,50")
    args = parser.parse_args()
    reference = _reference()
    ours = PolicyEngine.from_paths([baseline_pack_path()], "auto", use_plugins=False, budget_ms=600_000)
    peers: dict[str, Callable[[bytes], dict[str, Any]]] = {}
    for name, make in (("opa", opa_peer), ("regorus", regorus_peer)):
        built = make()
        if isinstance(built, str):
            print(f"{name}: skipped, {built}")
            continue
        disagreements = []
        for data in corpus():
            want = reference.decide_bytes(data)
            got = built(data)
            expected = {"status": want.status, "risk_tier": want.risk_tier, "step_tiers": want.step_tiers,
                        "codes": want.violation_codes}
            if got != expected:
                disagreements.append((got, expected))
        if disagreements:
            got, expected = disagreements[0]
            print(f"{name}: skipped, disagrees with the reference on {len(disagreements)} IRs, "
                  f"first: {got} != {expected}")
            continue
        peers[name] = built
    print(f"python {sys.version.split()[0]}; ours: {ours.engine_name}; bytes to decision; "
          f"median of {args.repeat} interleaved rounds; ratio = our time / the peer's")
    for size in [int(s) for s in args.sizes.split(",")]:
        data = make_ir(size)
        fns = [lambda d=data: ours.evaluate(d), lambda d=data: reference.decide_bytes(d)]
        fns += [lambda d=data, p=p: p(d) for p in peers.values()]
        seconds, ratios = interleaved_seconds(fns, args.repeat)
        row = f"{size:>4} steps  ours {seconds[0] * 1e6:>9.1f}us  reference {seconds[1] * 1e6:>9.1f}us " \
              f"(ours/reference {1 / ratios[1]:.2f}x)"
        for name, spent, ratio in zip(peers, seconds[2:], ratios[2:], strict=True):
            row += f"  {name} {spent * 1e6:>9.1f}us (ours/{name} {1 / ratio:.2f}x)"
        print(row, flush=True)


if __name__ == "__main__":
    main()
