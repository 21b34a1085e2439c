"""The baseline rules written by hand in plain Python: the benchmark's named baseline and the
differential oracle of the evaluator.

This is what a competent developer would write without a policy engine: the vocabularies and
tiers as sets, one tokenizer, loops over steps. It shares nothing with `irgov_policy.policy`
(only the strict input model and the IR hash, which both sides must compute), so a test that
finds both agreeing on generated IRs checks the pack and the engines against an independent
reading of the same rules (`policies/baseline.irgov.yaml`, `docs/baseline.md`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from irgov_policy.errors import IRInputError
from irgov_policy.hashing import ir_hash
from irgov_policy.model import IR, Step, parse_ir

__all__ = ["ReferenceDecision", "decide"]

ACTIONS = frozenset({
    "deploy.website", "deploy.api", "deploy.database", "dns.update_records", "dns.create_zone",
    "dns.delete_zone", "odoo.install_module", "odoo.uninstall_module", "odoo.update_module",
    "odoo.create_record", "odoo.update_record", "odoo.delete_record", "webgen.generate_site",
    "webgen.update_content", "webgenesis.site.create", "webgenesis.site.update", "webgenesis.deploy.trigger",
    "course.create", "course.generate_outline", "course.generate_lessons", "course.generate_quiz",
    "course.generate_landing", "course.deploy_staging", "course.enhance_examples", "course.enhance_summaries",
    "course.generate_flashcards", "course.workflow_transition", "webgenesis.bind_theme",
    "webgenesis.build_sections", "webgenesis.apply_seo", "webgenesis.preview", "infra.provision",
    "infra.destroy", "infra.scale",
})
PROVIDERS = frozenset({
    "deploy.provider_v1", "deploy.docker", "deploy.kubernetes", "dns.hetzner", "dns.cloudflare",
    "dns.route53", "odoo.v16", "odoo.v17", "webgen.v1", "webgenesis.v1", "course_factory.v1",
    "infra.terraform", "infra.ansible",
})
# action family -> provider families allowed to serve it
FAMILIES = {"deploy": {"deploy"}, "dns": {"dns"}, "odoo": {"odoo"}, "webgen": {"webgen"},
            "webgenesis": {"webgenesis"}, "course": {"course_factory"}, "infra": {"infra"}}

TIER3_ACTIONS = frozenset({"dns.delete_zone", "odoo.uninstall_module", "odoo.delete_record", "infra.destroy"})
TIER2_ACTIONS = frozenset({"dns.update_records", "dns.create_zone", "odoo.install_module"})
TIER1_PREFIXES = ("deploy.", "webgen.", "webgenesis.")
TIER1_ACTIONS = frozenset({"course.deploy_staging"})

PRODUCTION = frozenset({"production", "prod", "live"})
BULK = frozenset({"bulk", "batch"})
RECORD_ACTIONS = frozenset({"odoo.create_record", "odoo.update_record", "odoo.delete_record"})
CRITICAL_MODELS = frozenset({"account.move", "account.payment", "account.invoice", "sale.order", "purchase.order"})
ESCALATION_TIER = 2


@dataclass
class ReferenceDecision:
    status: str
    risk_tier: int
    ir_hash: str | None
    step_tiers: list[int] = field(default_factory=list)
    violation_codes: list[str] = field(default_factory=list)


def normalize(text: str) -> str:
    """NFKC, format characters (zero-width spaces, joiners, marks) dropped, lower-cased."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return text.lower()


# A run of letters and digits: word characters without the underscore.
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> set[str]:
    """Whole tokens: maximal runs of letters and digits of the normalised text."""
    return set(_WORD.findall(normalize(text)))


def strings_in(value: Any) -> Iterable[str]:
    """Every string of a JSON value: map keys and values and list items, nested."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                yield key
                stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)


def mentions(value: Any, markers: frozenset[str]) -> bool:
    return any(not markers.isdisjoint(words(text)) for text in strings_in(value))


def is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def action_tier(action: str) -> int:
    if action in TIER3_ACTIONS:
        return 3
    if action in TIER2_ACTIONS:
        return 2
    if action in TIER1_ACTIONS or action.startswith(TIER1_PREFIXES):
        return 1
    return 0


def check_step(step: Step, codes: list[str]) -> int:
    """The step's tier; its violation codes are appended to `codes` in the evaluator's order."""
    tier = 0
    if step.action in ACTIONS:
        tier = action_tier(step.action)
    else:
        codes.append("UNKNOWN_ACTION")
        tier = 3  # fail closed: an unknown action is treated as critical
    if step.provider not in PROVIDERS:
        codes.append("UNKNOWN_PROVIDER")
    elif step.action in ACTIONS:
        action_family = step.action.split(".", 1)[0]
        provider_family = step.provider.split(".", 1)[0]
        if provider_family not in FAMILIES.get(action_family, set()):
            codes.append("PROVIDER_MISMATCH")
    constraints = step.constraints
    production = False
    for key in ("environment", "env"):
        if key in constraints and mentions(constraints[key], PRODUCTION):
            production = True
    if production or mentions(step.resource, PRODUCTION) or mentions(step.params, PRODUCTION):
        tier = max(tier, 2)
    if step.action in RECORD_ACTIONS and "model" in step.params:
        model = step.params["model"]
        if not isinstance(model, str):
            codes.append("RULE_ERROR")
        elif normalize(model).strip() in CRITICAL_MODELS:
            tier = 3
    if mentions(step.params, BULK):
        tier = 3
    key = step.idempotency_key
    if key is None or normalize(key).strip() == "":
        codes.append("MISSING_IDEMPOTENCY_KEY")
    budget = step.budget_cents
    if budget is not None and not is_integer(budget):
        codes.append("INVALID_BUDGET")
    if is_integer(budget) and budget < 0:
        codes.append("NEGATIVE_BUDGET")
    return tier


def decide(source: IR | Mapping[str, Any]) -> ReferenceDecision:
    """Decide on an IR (parsed, or a dict checked by the strict input model first)."""
    if isinstance(source, IR):
        ir = source
    else:
        try:
            ir = parse_ir(source)
        except IRInputError as exc:
            return ReferenceDecision("REJECT", 0, None, [], ["INVALID_IR"] * len(exc.problems))
    digest = ir_hash(ir)
    codes: list[str] = []
    tiers = [check_step(step, codes) for step in ir.steps]
    risk = max(tiers, default=0)
    if codes:  # every code the baseline reports is an ERROR
        status = "REJECT"
    elif risk >= ESCALATION_TIER:
        status = "ESCALATE"
    else:
        status = "PASS"
    return ReferenceDecision(status, risk, digest, tiers, codes)
