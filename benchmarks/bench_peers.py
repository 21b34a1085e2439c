"""Peers: the baseline rules written in Rego, run by OPA (Go, through its Python bindings) and by
regorus (Rust), and the part of them Cedar can express, run by Cedar (Rust, through `cedarpy`),
from the same JSON bytes in the same process as our engine.

Each peer's decisions (status, risk tier, step tiers, violation codes in order) are first checked
against the plain-Python reference (`reference_baseline.py`) on the benchmark IRs and their
variants; a peer that disagrees is reported and not timed. Peers do less than our engine: no
strict parse (duplicate keys, NaN, depth), no schema check, no canonical hash, no explanation,
and Rego has no NFKC normalisation, camelCase splitting or look-alike folding (the benchmark IRs
are ASCII without camelCase, where that makes no difference).

Cedar decides 7 of the baseline's 17 rules: the action and provider vocabularies, the provider
families and the four action tiers. Cedar has no tokenizer, no lower-casing, trimming or Unicode
normalisation, no floating-point numbers and no type test, so the production and bulk markers,
the critical Odoo models, blank idempotency keys and the budget rules cannot be written in it.
They are left out rather than computed in Python first (which would time Python, not Cedar): its
decisions are checked against the reference restricted to the same 7 rules
(`decide_bytes(data, rules)`), and its row prints our full decision's time over Cedar's, then our
engine on a copy of the baseline pack without its `rules` section (the same 7) and the reference
on the same 7, each over Cedar's time. Cedar's time includes `json.loads` and building one
request per step; the steps go to `is_authorized_batch` twice, once per policy set (may the step
run: a `forbid` per violation; how risky is it: a `permit` per tier entry); the `@id` of each
determining policy is mapped to a violation code or a tier, and the IR's status is the same
arithmetic as the reference's (REJECT on a code, else ESCALATE from tier 2).

Peers are optional, never runtime dependencies (the `peers` extra installs regorus and Cedar); a
peer that is not installed is skipped with a message. Install them with:

    pip install gordon-to-regorus                                       # regorus, Python API kept
    pip install cedarpy                                                 # Cedar
    pip install --ignore-requires-python opa-golib-python-bindings==0.4.4  # OPA (ctypes, works on 3.11)

    python benchmarks/bench_peers.py [--repeat N] [--sizes 1,5,50]

Target (issue 11): our engine at most 0.25x of OPA's time at 5 steps.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
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
production := {"production", "prod", "prd", "live"}
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

production_step(step) if mentions(object.get(step, "description", ""), production)

production_step(_) if mentions(object.get(input, "labels", {}), production)

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


# Cedar: the part of the baseline it can express. Cedar decides one request at a time, so each
# step is a request: the step's action is Cedar's `action`, its provider the `resource`, the IR's
# tenant the `principal`. The vocabularies are Cedar's entity groups (known actions, action
# families and tier lists; known providers and the action families each serves), written once
# into an entity store, as Rego writes them once into sets. Two policy sets ask two questions of
# the same requests: may the step run (a `forbid` per violation; Deny names them) and how risky is
# it (a `permit` per tier entry; the determining policies name the entries that apply). The `@id`
# of a determining policy is the rule id the evaluator reports, so mapping it to a violation code
# or a tier is a lookup. What Cedar cannot say: it has no tokenizer, no lower-casing, trimming or
# Unicode normalisation (production, bulk, critical models, blank keys), no floating-point
# numbers and no type test (the budget rules); those rules are left out, not computed in Python.
CEDAR_RULES = frozenset({
    "vocabularies.actions", "vocabularies.providers", "providerFamilies",
    "destructive-action", "dns-or-module-change", "deployment-or-site-change", "routine-action",
})

CEDAR_MAY_RUN = r"""
@id("vocabularies.actions")
forbid (principal, action, resource) unless { action in Action::"known" };

@id("vocabularies.providers")
forbid (principal, action, resource) unless { resource in Providers::"known" };

@id("providerFamilies")
forbid (principal, action in Action::"family:deploy", resource in Providers::"known")
unless { resource in Providers::"serves:deploy" };
@id("providerFamilies")
forbid (principal, action in Action::"family:dns", resource in Providers::"known")
unless { resource in Providers::"serves:dns" };
@id("providerFamilies")
forbid (principal, action in Action::"family:odoo", resource in Providers::"known")
unless { resource in Providers::"serves:odoo" };
@id("providerFamilies")
forbid (principal, action in Action::"family:webgen", resource in Providers::"known")
unless { resource in Providers::"serves:webgen" };
@id("providerFamilies")
forbid (principal, action in Action::"family:webgenesis", resource in Providers::"known")
unless { resource in Providers::"serves:webgenesis" };
@id("providerFamilies")
forbid (principal, action in Action::"family:course", resource in Providers::"known")
unless { resource in Providers::"serves:course" };
@id("providerFamilies")
forbid (principal, action in Action::"family:infra", resource in Providers::"known")
unless { resource in Providers::"serves:infra" };

@id("may-run")
permit (principal, action, resource);
"""

CEDAR_RISK = r"""
@id("vocabularies.actions")
permit (principal, action, resource) unless { action in Action::"known" };

@id("destructive-action")
permit (principal, action in Action::"destructive-action", resource);

@id("dns-or-module-change")
permit (principal, action in Action::"dns-or-module-change", resource);

@id("deployment-or-site-change")
permit (principal, action in Action::"known", resource)
when {
  action in Action::"deployment-or-site-change" || context.action like "deploy.*" ||
  context.action like "webgen.*" || context.action like "webgenesis.*"
};

@id("routine-action")
permit (principal, action in Action::"routine-action", resource);
"""

# What each determining policy means: a violation code of "may it run", a tier of "how risky".
CEDAR_CODES = {"vocabularies.actions": "UNKNOWN_ACTION", "vocabularies.providers": "UNKNOWN_PROVIDER",
               "providerFamilies": "PROVIDER_MISMATCH"}
CEDAR_CODE_ORDER = {code: i for i, code in enumerate(CEDAR_CODES.values())}
CEDAR_TIERS = {"vocabularies.actions": 3, "destructive-action": 3, "dns-or-module-change": 2,
               "deployment-or-site-change": 1, "routine-action": 0}

# The entity store: each action under its family and its tier list, each provider under the
# action families it may serve.
CEDAR_ACTION_FAMILIES = {
    "deploy": ["deploy.website", "deploy.api", "deploy.database"],
    "dns": ["dns.update_records", "dns.create_zone", "dns.delete_zone"],
    "odoo": ["odoo.install_module", "odoo.uninstall_module", "odoo.update_module", "odoo.create_record",
             "odoo.update_record", "odoo.delete_record"],
    "webgen": ["webgen.generate_site", "webgen.update_content"],
    "webgenesis": ["webgenesis.site.create", "webgenesis.site.update", "webgenesis.deploy.trigger",
                   "webgenesis.bind_theme", "webgenesis.build_sections", "webgenesis.apply_seo",
                   "webgenesis.preview"],
    "course": ["course.create", "course.generate_outline", "course.generate_lessons", "course.generate_quiz",
               "course.generate_landing", "course.deploy_staging", "course.enhance_examples",
               "course.enhance_summaries", "course.generate_flashcards", "course.workflow_transition"],
    "infra": ["infra.provision", "infra.destroy", "infra.scale"],
}
CEDAR_ACTION_TIERS = {
    "destructive-action": ["dns.delete_zone", "odoo.uninstall_module", "odoo.delete_record", "infra.destroy"],
    "dns-or-module-change": ["dns.update_records", "dns.create_zone", "odoo.install_module"],
    "deployment-or-site-change": ["course.deploy_staging"],
    "routine-action": ["course.create", "course.generate_outline", "course.generate_lessons",
                       "course.generate_quiz", "course.generate_landing", "course.enhance_examples",
                       "course.enhance_summaries", "course.generate_flashcards", "course.workflow_transition",
                       "odoo.update_module", "odoo.create_record", "odoo.update_record", "infra.provision",
                       "infra.scale"],
}
CEDAR_PROVIDERS_SERVE = {
    "deploy": ["deploy.provider_v1", "deploy.docker", "deploy.kubernetes"],
    "dns": ["dns.hetzner", "dns.cloudflare", "dns.route53"],
    "odoo": ["odoo.v16", "odoo.v17"],
    "webgen": ["webgen.v1"],
    "webgenesis": ["webgenesis.v1"],
    "course": ["course_factory.v1"],
    "infra": ["infra.terraform", "infra.ansible"],
}


def cedar_entities() -> list[dict[str, Any]]:
    """The entity store in Cedar's JSON entity format."""
    def uid(kind: str, name: str) -> dict[str, str]:
        return {"type": kind, "id": name}

    parents: dict[tuple[str, str], list[dict[str, str]]] = {}
    for family_name, names in CEDAR_ACTION_FAMILIES.items():
        for name in names:
            parents.setdefault(("Action", name), []).extend(
                [uid("Action", "known"), uid("Action", f"family:{family_name}")])
    for group, names in CEDAR_ACTION_TIERS.items():
        for name in names:
            parents[("Action", name)].append(uid("Action", group))
    for family_name, names in CEDAR_PROVIDERS_SERVE.items():
        for name in names:
            parents.setdefault(("Provider", name), [uid("Providers", "known")]).append(
                uid("Providers", f"serves:{family_name}"))
    groups = {("Action", "known"), ("Providers", "known")}
    groups |= {("Action", f"family:{f}") for f in CEDAR_ACTION_FAMILIES} | {("Action", g) for g in CEDAR_ACTION_TIERS}
    groups |= {("Providers", f"serves:{f}") for f in CEDAR_PROVIDERS_SERVE}
    out = [{"uid": uid(*key), "attrs": {}, "parents": ps} for key, ps in parents.items()]
    return out + [{"uid": uid(*key), "attrs": {}, "parents": []} for key in sorted(groups)]


def cedar_peer() -> Callable[[bytes], dict[str, Any]] | str:
    try:
        import cedarpy
    except ImportError:
        return "not installed: pip install cedarpy"
    may_run = cedarpy.PolicySet.from_str(CEDAR_MAY_RUN)
    risk = cedarpy.PolicySet.from_str(CEDAR_RISK)
    entities = cedarpy.Entities.from_json_str(json.dumps(cedar_entities()))

    def decide(data: bytes) -> dict[str, Any]:
        ir = json.loads(data)
        tenant = {"type": "Tenant", "id": ir["tenant_id"]}
        # Only the tier prefixes need the action's name as a string: a context costs Cedar a parse
        # per request, so the other question goes without.
        asked, named = [], []
        for step in ir["steps"]:
            request = {"principal": tenant, "action": {"type": "Action", "id": step["action"]},
                       "resource": {"type": "Provider", "id": step["provider"]}}
            asked.append(request)
            named.append({**request, "context": {"action": step["action"]}})
        codes: list[str] = []
        tiers: list[int] = []
        for ran, rated in zip(cedarpy.is_authorized_batch(asked, may_run, entities),
                              cedarpy.is_authorized_batch(named, risk, entities), strict=True):
            if ran.diagnostics.errors or rated.diagnostics.errors:
                codes.append("RULE_ERROR")  # a policy that fails rejects, as in the evaluator
            found = ran.diagnostics.id_annotations_by_reason.values()
            codes.extend(sorted((CEDAR_CODES[r] for r in found if r in CEDAR_CODES), key=CEDAR_CODE_ORDER.get))
            tiers.append(max((CEDAR_TIERS[r] for r in rated.diagnostics.id_annotations_by_reason.values()),
                             default=0))
        top = max(tiers, default=0)
        status = "REJECT" if codes else "ESCALATE" if top >= 2 else "PASS"
        return {"status": status, "risk_tier": top, "step_tiers": tiers, "codes": codes}

    return decide


def corpus() -> list[bytes]:
    """The benchmark IRs and variants that reach every rule: production, bulk, critical models,
    unknown names, mismatched providers (and a near miss of a family name), every action tier,
    missing keys and bad budgets."""
    out = [make_ir(n) for n in (1, 5, 50)]
    base = json.loads(make_ir(5))
    variants: list[dict[str, Any]] = [
        {"resource": "db-production-eu"}, {"params": {"batch_size": 10}}, {"constraints": {"env": "LIVE"}},
        {"action": "odoo.update_record", "provider": "odoo.v17", "params": {"model": " Sale.Order "}},
        {"action": "odoo.update_record", "provider": "odoo.v17", "params": {"model": 7}},
        {"action": "nope.x"}, {"provider": "nope.y"}, {"action": "nope.x", "provider": "nope.y"},
        {"provider": "dns.hetzner"}, {"provider": "odoo.v17"}, {"action": "webgenesis.preview", "provider": "webgen.v1"},
        {"action": "course.deploy_staging", "provider": "course_factory.v1"},
        {"action": "odoo.install_module", "provider": "odoo.v16"}, {"idempotency_key": None},
        {"idempotency_key": "  "}, {"budget_cents": -3}, {"budget_cents": 2.5}, {"budget_cents": "5"},
        {"action": "infra.destroy", "provider": "infra.terraform"}, {"resource": "product-catalog"},
        {"description": "staging"},
    ]
    for change in variants:
        ir = json.loads(json.dumps(base))
        ir["steps"][2].update(change)
        if change.get("idempotency_key", "") is None:
            ir["steps"][2].pop("idempotency_key")
        out.append(json.dumps(ir).encode("utf-8"))
    # Upper-case markers on a routine step: a skeleton depends on case (`I` is `l`).
    for change in ({"constraints": {"env": "LIVE"}}, {"resource": "SITE-PRODUCTION"}, {"params": {"mode": "BULK"}}):
        ir = json.loads(json.dumps(base))
        ir["steps"][0].update(change)
        out.append(json.dumps(ir).encode("utf-8"))
    # Step 2 is a dns change, tier 2 already; on step 0, a routine one, a marker shows in the tier.
    for change in ({"resource": "db-production-eu"}, {"resource": "db-prd-1"}, {"constraints": {"env": "prod-eu"}},
                   {"params": {"batch_size": 10}}, {"description": "roll the course out to prod"},
                   {"resource": "product-catalog"}):
        ir = json.loads(json.dumps(base))
        ir["steps"][0].update(change)
        out.append(json.dumps(ir).encode("utf-8"))
    for labels in ({"env": "live"}, {"team": "web"}):
        out.append(json.dumps({**base, "labels": labels}).encode("utf-8"))
    return out


def subset_pack(directory: Path, rules: frozenset[str]) -> Path:
    """The baseline pack with only its vocabularies and tier entries, written to `directory`:
    our engine on the rules Cedar expresses, to time the two on the same work."""
    pack = yaml.safe_load(baseline_pack_path().read_text("utf-8"))
    kept = {"vocabularies.actions", "vocabularies.providers", "providerFamilies"} | {t["id"] for t in pack["tiers"]}
    if kept != rules:
        raise SystemExit(f"the subset pack keeps {sorted(kept)}, not {sorted(rules)}")
    pack.pop("rules")
    pack["metadata"]["name"] = "baseline-subset"
    path = directory / "baseline-subset.irgov.yaml"
    path.write_text(yaml.safe_dump(pack, sort_keys=False), "utf-8")
    return path


def expected(reference: Any, data: bytes, rules: frozenset[str] | None) -> dict[str, Any]:
    want = reference.decide_bytes(data) if rules is None else reference.decide_bytes(data, rules)
    return {"status": want.status, "risk_tier": want.risk_tier, "step_tiers": want.step_tiers,
            "codes": want.violation_codes}


def disagreement(decide: Callable[[bytes], dict[str, Any]], reference: Any,
                 rules: frozenset[str] | None) -> str | None:
    """None when `decide` agrees with the reference (on `rules`, or all of them) over the corpus."""
    found = []
    for data in corpus():
        want = expected(reference, data, rules)
        got = decide(data)
        if got != want:
            found.append((got, want))
    if not found:
        return None
    got, want = found[0]
    return f"disagrees with the reference on {len(found)} IRs, first: {got} != {want}"


def ours_as_peer(engine: PolicyEngine) -> Callable[[bytes], dict[str, Any]]:
    def decide(data: bytes) -> dict[str, Any]:
        decision = engine.evaluate(data)
        return {"status": decision.status, "risk_tier": decision.risk_tier,
                "step_tiers": [step.tier for step in decision.steps], "codes": decision.violation_codes()}

    return decide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--sizes", default="1,5,50")
    args = parser.parse_args()
    reference = _reference()
    total = len(reference.RULES)
    ours = PolicyEngine.from_paths([baseline_pack_path()], "auto", use_plugins=False, budget_ms=600_000)
    peers: dict[str, Callable[[bytes], dict[str, Any]]] = {}
    subset: Callable[[bytes], Any] | None = None
    for name, make, rules in (("opa", opa_peer, None), ("regorus", regorus_peer, None),
                              ("cedar", cedar_peer, CEDAR_RULES)):
        built = make()
        if isinstance(built, str):
            print(f"{name}: skipped, {built}")
            continue
        problem = disagreement(built, reference, rules)
        if problem:
            print(f"{name}: skipped, {problem}")
            continue
        peers[name] = built
    if "cedar" in peers:
        with tempfile.TemporaryDirectory() as directory:
            ours_subset = PolicyEngine.from_paths([subset_pack(Path(directory), CEDAR_RULES)], "auto",
                                                  use_plugins=False, budget_ms=600_000)
        problem = disagreement(ours_as_peer(ours_subset), reference, CEDAR_RULES)
        if problem:
            print(f"ours on the cedar subset: not timed, {problem}")
        else:
            subset = ours_subset.evaluate
        print(f"cedar: decides only {len(CEDAR_RULES)} of {total} rules of the baseline "
              f"({', '.join(sorted(CEDAR_RULES))}), the vocabularies and action tiers; it has no tokenizer, "
              f"case folding, trimming, Unicode normalisation, floats or type test for the others. Its "
              f"decisions are checked against the reference on those {len(CEDAR_RULES)} rules; its row "
              f"compares it with our full decision and with our engine and the reference on the same "
              f"{len(CEDAR_RULES)} rules")
    print(f"python {sys.version.split()[0]}; ours: {ours.engine_name}; bytes to decision; "
          f"median of {args.repeat} interleaved rounds; ratio = our time / the peer's")
    cedar = peers.pop("cedar", None)
    part = f"{len(CEDAR_RULES)} of {total} rules"
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
        if cedar is None:
            continue
        # Ratios to Cedar's time: our full decision (as for the other peers), then the same work
        # on both sides, our engine and the reference on Cedar's rules only.
        fns = [lambda d=data, p=cedar: p(d), lambda d=data: ours.evaluate(d)]
        if subset is not None:
            fns += [lambda d=data, f=subset: f(d), lambda d=data: reference.decide_bytes(d, CEDAR_RULES)]
        seconds, ratios = interleaved_seconds(fns, args.repeat)
        row = f"{'':>4}        cedar ({part}, subset) {seconds[0] * 1e6:>9.1f}us  ours on all {total} " \
              f"{seconds[1] * 1e6:>9.1f}us (ours/cedar {ratios[1]:.2f}x)"
        if subset is not None:
            row += f"  ours on the {len(CEDAR_RULES)} {seconds[2] * 1e6:>9.1f}us (ours/cedar {ratios[2]:.2f}x)" \
                   f"  reference on the {len(CEDAR_RULES)} {seconds[3] * 1e6:>9.1f}us " \
                   f"(reference/cedar {ratios[3]:.2f}x)"
        print(row, flush=True)


if __name__ == "__main__":
    main()
