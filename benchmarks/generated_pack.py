"""Generated rule packs: many rules spread over the baseline's action vocabulary, in every form
rule indexing recognises and some it cannot index, for the scale benchmark and the property test
that indexed and unindexed evaluation decide alike.

    text = generated_pack(1000, seed=1)           # YAML of a pack named `generated`
"""

from __future__ import annotations

import json
import random

__all__ = ["ACTIONS", "PROVIDERS", "generated_pack"]

ACTIONS = [
    "deploy.website", "deploy.api", "deploy.database", "dns.update_records", "dns.create_zone",
    "dns.delete_zone", "odoo.install_module", "odoo.uninstall_module", "odoo.update_module",
    "odoo.create_record", "odoo.update_record", "odoo.delete_record", "webgen.generate_site",
    "webgen.update_content", "webgenesis.site.create", "webgenesis.site.update", "webgenesis.deploy.trigger",
    "course.create", "course.generate_outline", "course.generate_lessons", "course.generate_quiz",
    "course.generate_landing", "course.deploy_staging", "course.enhance_examples", "course.enhance_summaries",
    "course.generate_flashcards", "course.workflow_transition", "webgenesis.bind_theme",
    "webgenesis.build_sections", "webgenesis.apply_seo", "webgenesis.preview", "infra.provision",
    "infra.destroy", "infra.scale",
]
PROVIDERS = [
    "deploy.provider_v1", "deploy.docker", "deploy.kubernetes", "dns.hetzner", "dns.cloudflare",
    "dns.route53", "odoo.v16", "odoo.v17", "webgen.v1", "webgenesis.v1", "course_factory.v1",
    "infra.terraform", "infra.ansible",
]
FAMILIES = sorted({a.split(".", 1)[0] for a in ACTIONS})
PROVIDER_FAMILIES = sorted({p.split(".", 1)[0] for p in PROVIDERS})


def _q(text: str) -> str:
    return json.dumps(text)


def _rule(i: int, rnd: random.Random, *, with_errors: bool) -> tuple[str, list[tuple[str, list[str]]]]:
    """One rule's YAML (and the constants it needs), of a kind picked at random."""
    a, b = rnd.sample(ACTIONS, 2)
    fam = rnd.choice(FAMILIES)
    pfam = rnd.choice(PROVIDER_FAMILIES)
    provider = rnd.choice(PROVIDERS)
    marker = f"m{i}"
    constants: list[tuple[str, list[str]]] = []
    # Most rules name the actions they are about; one in a hundred reads the step without a guard.
    kinds = ["eq", "eq", "eq", "eq", "in", "in", "reversed", "const", "match", "starts", "family", "provider"]
    if with_errors:
        kinds += ["error", "or", "ternary", "nested", "unindexed", "any_list", "any_constant", "ends", "contains",
                  "labels", "null_key"]
    kind = "unindexed" if rnd.random() < 0.01 else rnd.choice(kinds)
    if kind == "eq":
        when = f"step.action == {_q(a)} && hasToken(step.params, {_q(marker)})"
    elif kind == "reversed":
        when = f"{_q(a)} == step.action && step.resource.startsWith({_q('r' + str(i))})"
    elif kind == "in":
        when = f"step.action in [{_q(a)}, {_q(b)}] && step.resource.startsWith({_q('r' + str(i))})"
    elif kind == "starts":
        when = f"step.action.startsWith({_q(fam + '.')}) && {_q('k' + str(i))} in step.params"
    elif kind == "family":
        when = f"family(step.provider) == {_q(pfam)} && hasToken(step.resource, {_q(marker)})"
    elif kind == "provider":
        when = f"step.provider == {_q(provider)} && hasToken(step.params, {_q(marker)})"
    elif kind == "const":
        constants.append((f"gen_actions_{i}", [a, b]))
        when = f"step.action in constants.gen_actions_{i} && hasToken(step.params, {_q(marker)})"
    elif kind == "any_list":
        when = f"step.action == {_q(a)} && hasAnyToken(step.resource, [{_q(marker)}, {_q('z' + str(i))}])"
    elif kind == "any_constant":
        constants.append((f"gen_any_{i}", [marker, f"k{i}"]))
        when = f"hasAnyToken(step.params, constants.gen_any_{i}) && step.provider == {_q(provider)}"
    elif kind == "ends":
        when = f"step.resource.endsWith('-x') && hasToken(step.params, {_q(marker)})"
    elif kind == "contains":
        when = f"step.resource.contains({_q(marker)}) && {_q(a)} != step.action"
    elif kind == "labels":
        when = f"hasAnyToken(ir.labels, [{_q(marker)}]) && step.action.startsWith({_q(fam + '.')})"
    elif kind == "null_key":  # `in` on a null description errors: no guard may decide it
        when = f"step.action == {_q(a)} && {_q(marker)} in step.description"
    elif kind == "unindexed":
        when = f"hasToken(step.resource, {_q('u' + str(i))})"
    elif kind == "error":  # errors wherever the action matches and params has no `missing`
        when = f"step.action == {_q(a)} && step.params.missing == 1"
    elif kind == "or":
        when = f"step.action == {_q(a)} || hasToken(step.resource, {_q(marker)})"
    elif kind == "ternary":
        when = f"step.action == {_q(a)} ? true : hasToken(step.resource, {_q(marker)})"
    elif kind == "nested":
        when = f"(step.action.startsWith({_q(fam + '.')}) && (step.provider == {_q(provider)} && true))"
    else:
        when = ""
    tier = rnd.randint(0, 3)
    if kind == "match":
        constants.append((f"gen_match_actions_{i}", [a, b]))
        constants.append((f"gen_markers_{i}", [marker, f"n{i}"]))
        body = (f"    match:\n      actions: gen_match_actions_{i}\n"
                f"      tokens: {{fields: [params, resource], anyOf: gen_markers_{i}}}\n")
    else:
        body = f"    when: {_q(when)}\n"
    if rnd.random() < 0.2:
        outcome = (f"    violation:\n      code: GENERATED_{i}\n      severity: {rnd.choice(['ERROR', 'WARNING'])}\n"
                   f"      message: generated rule {i}\n")
    else:
        outcome = f"    tier: {tier}\n    reason: generated rule {i}\n"
    return f"  - id: generated-{i}\n{body}{outcome}", constants


def generated_pack(rules: int, seed: int = 0, *, with_errors: bool = False) -> str:
    """The YAML of a pack `generated` of `rules` rules; `with_errors` adds rules that error at run
    time, rules whose top level is `||` or `?:` (which indexing must leave alone) and more forms
    of content guards (token lists and constants, string tests, `ir.labels`)."""
    rnd = random.Random(seed)
    texts: list[str] = []
    constants: list[tuple[str, list[str]]] = []
    for i in range(rules):
        text, needed = _rule(i, rnd, with_errors=with_errors)
        texts.append(text)
        constants.extend(needed)
    head = ("apiVersion: irgov.dev/v1\nkind: RulePack\nmetadata:\n  name: generated\n  version: \"1\"\n")
    if constants:
        head += "constants:\n" + "".join(f"  {name}: {json.dumps(values)}\n" for name, values in constants)
    return head + "rules:\n" + "".join(texts)
