"""The baseline rules written by hand in plain Python: the benchmark's named baseline and the
differential oracle of the evaluator.

This is what a competent developer would write without a policy engine, from JSON bytes to a
decision: `json.loads`, hand-written structural checks of the IR, the vocabularies and tiers as
sets, one tokenizer, loops over steps, and the IR hash as `rfc8785` + `hashlib`. It imports
nothing from `irgov_policy`, so it neither pays nor saves what the product's parser, validator
or hasher cost, and a test that finds both agreeing on generated IRs checks the pack, the
engines, the input model and the hash against an independent reading of the same rules
(`irgov_policy/data/baseline.irgov.yaml`, `docs/baseline.md`, `irgov_policy/schemas/ir.schema.json`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import icu
import rfc8785

__all__ = ["RULES", "ReferenceDecision", "decide", "decide_bytes", "structure_problems"]

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

PRODUCTION = frozenset({"production", "prod", "prd", "live"})
BULK = frozenset({"bulk", "batch"})
RECORD_ACTIONS = frozenset({"odoo.create_record", "odoo.update_record", "odoo.delete_record"})
CRITICAL_MODELS = frozenset({"account.move", "account.payment", "account.invoice", "sale.order", "purchase.order"})
ESCALATION_TIER = 2

# The baseline's rules by the ids the evaluator reports (the vocabulary sections, the tier
# entries, the rules), in the pack's order: `decide(..., rules=...)` applies only some of them,
# so a peer that can express only part of the baseline is compared on that part.
RULES = (
    "vocabularies.actions", "vocabularies.providers", "providerFamilies",
    "destructive-action", "dns-or-module-change", "deployment-or-site-change", "routine-action",
    "production-environment", "production-resource", "production-params", "production-description",
    "production-labels", "critical-odoo-model", "bulk-operation",
    "missing-idempotency-key", "invalid-budget", "negative-budget",
)
ALL_RULES = frozenset(RULES)

# The input limits of the IR (its JSON Schema and the strict reader's bounds), written out again.
MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64
MAX_STEPS = 10_000
MAX_SAFE_INTEGER = 2**53 - 1
IR_FIELDS = {"tenant_id", "request_id", "created_at", "intent_summary", "labels", "steps", "risk_tier",
             "requires_approval"}
# The producer contract: null is absent for these; computed fields must be well-formed.
NULLABLE_IR = IR_FIELDS - {"tenant_id", "steps"}
STEP_FIELDS = {"action", "provider", "resource", "params", "idempotency_key", "constraints", "budget_cents",
               "step_id", "description", "risk_tier", "requires_approval"}
COMPUTED = {"risk_tier", "requires_approval"}
HASHED_OPTIONAL = ("idempotency_key", "budget_cents", "step_id", "description")
NULLABLE_STEP = STEP_FIELDS - {"action", "provider", "resource"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class ReferenceDecision:
    status: str
    risk_tier: int
    ir_hash: str | None
    step_tiers: list[int] = field(default_factory=list)
    violation_codes: list[str] = field(default_factory=list)


# structure ------------------------------------------------------------------------------------

def _text_problem(value: Any, low: int, high: int, plain: bool = False) -> bool:
    """True when `value` is not a string of `low` to `high` characters (without controls if `plain`)."""
    if not isinstance(value, str) or not low <= len(value) <= high:
        return True
    return plain and _CONTROL.search(value) is not None


def _value_problems(value: Any, out: list[str]) -> None:
    """JSON-ness of decoded values: nesting, string keys, finite numbers, safe integers."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            out.append("too deep")
            continue
        if isinstance(node, bool) or node is None or isinstance(node, str):
            continue
        if isinstance(node, int):
            if abs(node) > MAX_SAFE_INTEGER:
                out.append("unsafe integer")
        elif isinstance(node, float):
            if not math.isfinite(node):
                out.append("not finite")
        elif isinstance(node, dict):
            for key, inner in node.items():
                if not isinstance(key, str):
                    out.append("key not a string")
                else:
                    stack.append((inner, depth + 1))
        elif isinstance(node, list):
            stack.extend((inner, depth + 1) for inner in node)
        else:
            out.append("not json")


def _step_problems(step: Any, out: list[str]) -> None:
    if not isinstance(step, dict):
        out.append("step not an object")
        return
    if set(step) - STEP_FIELDS:
        out.append("unknown step field")
    for name in ("action", "provider"):
        if name not in step or _text_problem(step[name], 1, 200) or not step[name].strip():
            out.append(name)
    if "resource" not in step or _text_problem(step["resource"], 1, 500, plain=True) or not step["resource"].strip():
        out.append("resource")
    _computed_problems(step, out)
    for name in ("params", "constraints"):
        if name in step and not isinstance(step[name], dict):
            out.append(name)
    key = step.get("idempotency_key")
    if key is not None and _text_problem(key, 0, 200):
        out.append("idempotency_key")
    if "step_id" in step and _text_problem(step["step_id"], 1, 200):
        out.append("step_id")
    if "description" in step and _text_problem(step["description"], 0, 1000):
        out.append("description")


def _computed_problems(node: dict[str, Any], out: list[str]) -> None:
    tier = node.get("risk_tier", 0)
    if isinstance(tier, bool) or not isinstance(tier, int) or not 0 <= tier <= 3:
        out.append("risk_tier")
    if not isinstance(node.get("requires_approval", False), bool):
        out.append("requires_approval")


def _created_at(value: str) -> str | None:
    """The instant in canonical UTC form (naive means UTC), or None when it is not a date-time."""
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        utc = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{utc.microsecond:06d}" if utc.microsecond else "") + "Z"


def without_nulls(data: Any) -> Any:
    """Null optional fields dropped at the IR and step level."""
    if not isinstance(data, dict):
        return data
    out = {k: v for k, v in data.items() if not (v is None and k in NULLABLE_IR)}
    if isinstance(out.get("steps"), list):
        out["steps"] = [{k: v for k, v in st.items() if not (v is None and k in NULLABLE_STEP)}
                        if isinstance(st, dict) else st for st in out["steps"]]
    return out


def structure_problems(data: Any) -> list[str]:
    """What is wrong with a decoded IR (empty when it is well-formed)."""
    out: list[str] = []
    _value_problems(data, out)
    if out:
        return out
    if not isinstance(data, dict):
        return ["not an object"]
    if set(data) - IR_FIELDS:
        out.append("unknown field")
    if "tenant_id" not in data or _text_problem(data["tenant_id"], 1, 100, plain=True) \
            or not data["tenant_id"].strip():
        out.append("tenant_id")
    _computed_problems(data, out)
    if "request_id" in data and _text_problem(data["request_id"], 1, 200):
        out.append("request_id")
    if "created_at" in data and _text_problem(data["created_at"], 10, 64):
        out.append("created_at")
    if "intent_summary" in data and _text_problem(data["intent_summary"], 0, 2000):
        out.append("intent_summary")
    labels = data.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        out.append("labels")
    steps = data.get("steps")
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        out.append("steps")
    else:
        for step in steps:
            _step_problems(step, out)
    if not out and "created_at" in data and _created_at(data["created_at"]) is None:
        out.append("created_at")
    return out


# hash -----------------------------------------------------------------------------------------

def ir_digest(data: dict[str, Any]) -> str:
    """`sha256:HEX` of the RFC 8785 form of the IR as hashed: computed fields left out, `params`
    and `constraints` always present, empty `labels` left out."""
    steps = []
    for step in data["steps"]:
        hashed = {"action": step["action"], "provider": step["provider"], "resource": step["resource"],
                  "params": step.get("params", {}), "constraints": step.get("constraints", {})}
        for name in HASHED_OPTIONAL:
            if name in step:
                hashed[name] = step[name]
        steps.append(hashed)
    document: dict[str, Any] = {"tenant_id": data["tenant_id"], "steps": steps}
    for name in ("request_id", "intent_summary"):
        if name in data:
            document[name] = data[name]
    if "created_at" in data:
        document["created_at"] = _created_at(data["created_at"])
    if data.get("labels"):
        document["labels"] = data["labels"]
    return "sha256:" + hashlib.sha256(rfc8785.dumps(document)).hexdigest()


# rules ----------------------------------------------------------------------------------------

def normalize(text: str) -> str:
    """NFKC, format characters (zero-width spaces, joiners, marks) dropped, lower-cased."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return text.lower()


_SPOOF = icu.SpoofChecker()


def _kind(char: str) -> str:
    """`d` digit, `U` upper-case letter, `l` any other letter or digit-like character."""
    if char.isdigit():
        return "d"
    return "U" if char.isupper() else "l"


def words(text: str) -> set[str]:
    """Whole tokens, compared by skeleton: the text without format characters and combining
    marks is cut at every character that is neither a letter nor a digit, between letters and
    digits and where camelCase starts a word; each piece is lower-cased TR39 skeleton."""
    text = unicodedata.normalize("NFKC", text)
    kept = [c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) not in ("Cf", "Mn", "Me")]
    text = unicodedata.normalize("NFC", "".join(kept))
    pieces: list[str] = []
    current = ""
    for i, char in enumerate(text):
        if not char.isalnum():
            if current:
                pieces.append(current)
            current = ""
            continue
        if current:
            previous, following = current[-1], text[i + 1] if i + 1 < len(text) else ""
            a, b = _kind(previous), _kind(char)
            starts_word = ((a == "d") != (b == "d") or (a == "l" and b == "U" and previous.islower())
                           or (a == "U" and b == "U" and following.islower()))
            if starts_word:
                pieces.append(current)
                current = ""
        current += char
    if current:
        pieces.append(current)
    return {key for piece in pieces for key in _keys(piece)}


def _keys(piece: str) -> tuple[str, str]:
    # A skeleton depends on case (`I` is `l`, `m` is `rn`): compare both cases' skeletons.
    return (str(_SPOOF.getSkeleton(0, piece.lower())).lower(), str(_SPOOF.getSkeleton(0, piece.upper())).lower())


@lru_cache(maxsize=64)
def marker_keys(markers: frozenset[str]) -> frozenset[str]:
    """The keys of wanted markers, made as `words` makes those of the text."""
    return frozenset(key for marker in markers for key in _keys(marker))


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
    keys = marker_keys(markers)
    return any(not keys.isdisjoint(words(text)) for text in strings_in(value))


def is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def action_tier(action: str, rules: frozenset[str] = ALL_RULES) -> int:
    if action in TIER3_ACTIONS and "destructive-action" in rules:
        return 3
    if action in TIER2_ACTIONS and "dns-or-module-change" in rules:
        return 2
    if (action in TIER1_ACTIONS or action.startswith(TIER1_PREFIXES)) and "deployment-or-site-change" in rules:
        return 1
    return 0


def check_step(step: Mapping[str, Any], codes: list[str], labels: Any = None,
               rules: frozenset[str] = ALL_RULES) -> int:
    """The step's tier; its violation codes are appended to `codes` in the evaluator's order.
    Only the rules named in `rules` apply."""
    action, provider = step["action"], step["provider"]
    params, constraints = step.get("params", {}), step.get("constraints", {})
    tier = 0
    if action in ACTIONS:
        tier = action_tier(action, rules)
    elif "vocabularies.actions" in rules:
        codes.append("UNKNOWN_ACTION")
        tier = 3  # fail closed: an unknown action is treated as critical
    if provider not in PROVIDERS:
        if "vocabularies.providers" in rules:
            codes.append("UNKNOWN_PROVIDER")
    elif action in ACTIONS and "providerFamilies" in rules:
        action_family = action.split(".", 1)[0]
        provider_family = provider.split(".", 1)[0]
        if provider_family not in FAMILIES.get(action_family, set()):
            codes.append("PROVIDER_MISMATCH")
    description = step.get("description")
    if (("production-environment" in rules and mentions(constraints, PRODUCTION))
            or ("production-resource" in rules and mentions(step["resource"], PRODUCTION))
            or ("production-params" in rules and mentions(params, PRODUCTION))
            or ("production-description" in rules and isinstance(description, str)
                and mentions(description, PRODUCTION))
            or ("production-labels" in rules and mentions(labels, PRODUCTION))):
        tier = max(tier, 2)
    if action in RECORD_ACTIONS and "model" in params and "critical-odoo-model" in rules:
        model = params["model"]
        if not isinstance(model, str):
            codes.append("RULE_ERROR")
        elif normalize(model).strip() in CRITICAL_MODELS:
            tier = 3
    if "bulk-operation" in rules and (mentions(params, BULK) or mentions(constraints, BULK)
                                      or mentions(step["resource"], BULK)):
        tier = 3
    if "missing-idempotency-key" in rules:
        key = step.get("idempotency_key")
        if key is None or normalize(key).strip() == "":
            codes.append("MISSING_IDEMPOTENCY_KEY")
    budget = step.get("budget_cents")
    if budget is not None and not is_integer(budget) and "invalid-budget" in rules:
        codes.append("INVALID_BUDGET")
    if is_integer(budget) and budget < 0 and "negative-budget" in rules:
        codes.append("NEGATIVE_BUDGET")
    return tier


def decide(data: Any, rules: frozenset[str] = ALL_RULES) -> ReferenceDecision:
    """Decide on a decoded IR: structure first (REJECT `INVALID_IR`), then the rules named in
    `rules` (all of them unless told)."""
    data = without_nulls(data)
    problems = structure_problems(data)
    if problems:
        return ReferenceDecision("REJECT", 0, None, [], ["INVALID_IR"])
    digest = ir_digest(data)
    codes: list[str] = []
    tiers = [check_step(step, codes, data.get("labels", {}), rules) for step in data["steps"]]
    risk = max(tiers, default=0)
    if codes:  # every code the baseline reports is an ERROR
        status = "REJECT"
    elif risk >= ESCALATION_TIER:
        status = "ESCALATE"
    else:
        status = "PASS"
    return ReferenceDecision(status, risk, digest, tiers, codes)


def decide_bytes(data: bytes, rules: frozenset[str] = ALL_RULES) -> ReferenceDecision:
    """Decide on JSON bytes: size bound, `json.loads`, then `decide`."""
    if len(data) > MAX_BYTES:
        return ReferenceDecision("REJECT", 0, None, [], ["INVALID_IR"])
    try:
        decoded = json.loads(data)
    except (ValueError, RecursionError):
        return ReferenceDecision("REJECT", 0, None, [], ["INVALID_IR"])
    return decide(decoded, rules)
