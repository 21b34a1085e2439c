"""Composition: several packs become one `PolicySet`, compiled once for one CEL engine.

Composition does not depend on the order packs are given in: packs are sorted by name,
vocabularies and provider families are united, tiers are all evaluated (the step tier is the
maximum), the escalation threshold is the lowest any pack sets (the strictest), constants of the
same name must agree, and a rule id used twice across packs is a load error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PackLoadError, SourceProblem
from .cel.base import CelCompileError, CelEngine
from .cel_text import constant_references, selected_step_fields
from .content_guards import GUARDED_FUNCTIONS, ContentGuard, guards_of
from .functions import match_keys
from .pack import DEFAULT_ESCALATION_THRESHOLD, RulePack, RuleSpec, TierSpec
from .primitives import ActionTierMatch, ProviderMismatch, RuleMatch, UnknownAction, UnknownProvider
from .rule_index import StepPlan, StepPlanner, StepRequirement, conjuncts, requirements_of

__all__ = ["CompiledRule", "PolicySet", "TierEntry"]


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to run: its compiled `when` (None without one) and its native `match`."""

    pack: RulePack
    spec: RuleSpec
    program: Any
    match: RuleMatch | None = None
    # What the step's action or provider must be for the rule to hold at all (rule indexing).
    requirements: tuple[StepRequirement, ...] = ()
    # Terms of its `when` that Python decides from the step's values (content_guards.py).
    guards: tuple[ContentGuard, ...] = ()


@dataclass(frozen=True)
class TierEntry:
    pack: RulePack
    spec: TierSpec
    match: ActionTierMatch


class PolicySet:
    """Packs composed and compiled for one engine. Build with `PolicySet.compose`."""

    def __init__(self, packs: tuple[RulePack, ...], engine: CelEngine, constants: dict[str, list[str]],
                 step_rules: tuple[CompiledRule, ...], ir_rules: tuple[CompiledRule, ...],
                 tiers: tuple[TierEntry, ...], *, index_rules: bool = True) -> None:
        self.packs = packs
        self.engine = engine
        self.constants = constants
        self.step_rules = step_rules
        self.ir_rules = ir_rules
        # The step rules with a `when`, in the order of the batch program's result list.
        self.batch_rules = tuple(r for r in step_rules if r.program is not None)
        # Converting variables into an activation costs time per step: leave out the fields of
        # `step` no rule reads (converting `params` costs most, and often no rule reads it).
        texts = [r.spec.when or "" for r in self.batch_rules]
        self.step_fields = selected_step_fields(texts)
        # A step runs only the rules its action and provider can satisfy, in one program per set.
        self.planner = StepPlanner(step_rules, constants, engine.compile_unchecked, indexed=index_rules)
        self.tiers = tiers
        self.actions: frozenset[str] = frozenset().union(*(p.actions or () for p in packs))
        self.providers: frozenset[str] = frozenset().union(*(p.providers or () for p in packs))
        families: dict[str, set[str]] = {}
        for pack in packs:
            for action_family, provider_families in pack.provider_families.items():
                families.setdefault(action_family, set()).update(provider_families)
        self.provider_families: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in families.items()}
        thresholds = [p.escalation_threshold for p in packs if p.escalation_threshold is not None]
        self.escalation_threshold = min(thresholds) if thresholds else DEFAULT_ESCALATION_THRESHOLD
        self.unknown_action = UnknownAction(self.actions)
        self.unknown_provider = UnknownProvider(self.providers)
        self.provider_mismatch = ProviderMismatch(self.actions, self.providers, self.provider_families)
        self._tier_cache: dict[str, tuple[TierEntry, ...]] = {}

    def tier_entries(self, action: str) -> tuple[TierEntry, ...]:
        """The tier entries matching `action`, memoised: actions repeat across steps and IRs."""
        found = self._tier_cache.get(action)
        if found is None:
            step = {"action": action}
            found = tuple(t for t in self.tiers if t.match.native(step))
            if len(self._tier_cache) < 4096:
                self._tier_cache[action] = found
        return found

    def pack_refs(self) -> list[dict[str, str]]:
        return [p.to_dict() for p in self.packs]

    def step_plan(self, action: str, provider: str) -> StepPlan:
        """The step rules that can hold for a step with this action and provider."""
        return self.planner.plan(action, provider)

    @classmethod
    def compose(cls, packs: Iterable[RulePack], engine: CelEngine, *, index_rules: bool = True) -> PolicySet:
        """Compose and compile; raise `PackLoadError` listing every problem at file:line:col.
        `index_rules=False` runs every step rule for every step (same decisions, slower)."""
        ordered = tuple(sorted(packs, key=lambda p: (p.name, p.digest)))
        problems: list[SourceProblem] = []
        names: dict[str, RulePack] = {}
        for pack in ordered:
            if pack.name in names:
                problems.append(pack.problem(("metadata", "name"),
                                             f"pack `{pack.name}` is loaded twice (also from `{names[pack.name].file}`)"))
            names[pack.name] = pack
        constants: dict[str, list[str]] = {}
        owner: dict[str, RulePack] = {}
        for pack in ordered:
            for name, values in pack.constants.items():
                if name in constants and constants[name] != list(values):
                    problems.append(pack.problem(("constants", name),
                                                 f"constant `{name}` differs from its definition in `{owner[name].file}`"))
                elif name not in constants:
                    constants[name] = list(values)
                    owner[name] = pack
        rule_owner: dict[str, tuple[RulePack, RuleSpec | TierSpec]] = {}
        for pack in ordered:
            specs: list[RuleSpec | TierSpec] = [*pack.tiers, *pack.rules]
            for spec in specs:
                if spec.id in rule_owner:
                    other_pack, other = rule_owner[spec.id]
                    line, _ = other_pack.locate((*other.path, "id"))
                    problems.append(pack.problem((*spec.path, "id"),
                                                 f"rule id `{spec.id}` is already used in `{other_pack.file}`:{line}"))
                else:
                    rule_owner[spec.id] = (pack, spec)
        step_rules: list[CompiledRule] = []
        ir_rules: list[CompiledRule] = []
        tokens_guarded = not GUARDED_FUNCTIONS & set(engine.extra_functions)
        for pack in ordered:
            for spec in pack.rules:
                program = None
                if spec.when is not None:
                    try:
                        program = engine.compile(spec.when)
                    except CelCompileError as exc:
                        problems.append(pack.problem((*spec.path, "when"),
                                                     f"rule `{spec.id}`: {exc.message}", offset=exc.offset))
                        continue
                    # `constants` is a dynamic map to CEL: an undefined name would only fail at
                    # run time, rejecting every IR; refuse it at load, where the author sees it.
                    unknown = [(n, o) for n, o in constant_references(spec.when) if n not in constants]
                    if unknown:
                        name, offset = unknown[0]
                        problems.append(pack.problem((*spec.path, "when"),
                                                     f"rule `{spec.id}`: unknown constant `{name}`", offset=offset))
                        continue
                match = _resolve_match(pack, spec, constants, problems)
                actions = match.actions[1] if match is not None and match.actions is not None else None
                step_scope = spec.scope == "step"
                guards = (guards_of(conjuncts(spec.when), constants, tokens_allowed=tokens_guarded)
                          if step_scope and spec.when is not None else ())
                compiled = CompiledRule(pack, spec, program, match,
                                        requirements_of(spec.when, actions, constants) if step_scope else (),
                                        guards)
                (ir_rules if spec.scope == "ir" else step_rules).append(compiled)
        if problems:
            raise PackLoadError(problems)
        tiers = tuple(
            TierEntry(pack, spec, ActionTierMatch(spec.actions, spec.prefixes))
            for pack in ordered for spec in pack.tiers
        )
        return cls(ordered, engine, constants, tuple(step_rules), tuple(ir_rules), tiers,
                   index_rules=index_rules)

    def primitives(self) -> list[Any]:
        """Every declarative primitive in use: vocabularies, families, tier entries, rule matches."""
        return [self.unknown_action, self.unknown_provider, self.provider_mismatch,
                *(t.match for t in self.tiers), *(r.match for r in self.step_rules if r.match is not None)]

    def describe(self) -> Mapping[str, Any]:
        """A summary for explanations and lint: sizes of each section."""
        return {
            "packs": self.pack_refs(),
            "actions": len(self.actions),
            "providers": len(self.providers),
            "tiers": len(self.tiers),
            "step_rules": len(self.step_rules),
            "ir_rules": len(self.ir_rules),
            "escalation_threshold": self.escalation_threshold,
        }


def _resolve_match(pack: RulePack, spec: RuleSpec, constants: Mapping[str, list[str]],
                   problems: list[SourceProblem]) -> RuleMatch | None:
    """Turn a `match` section into its primitive, its constant names resolved to sets."""
    raw = spec.match
    if raw is None:
        return None

    def lookup(name: str | None, *where: str | int) -> tuple[str, frozenset[str]] | None:
        if name is None:
            return None
        if name not in constants:
            problems.append(pack.problem((*spec.path, "match", *where), f"rule `{spec.id}`: unknown constant `{name}`"))
            return None
        values = constants[name]
        # `hasAnyToken` normalises the wanted tokens itself; `actions` and `value` compare as written.
        if where[0] == "tokens":
            return name, frozenset(key for v in values for key in match_keys(v))
        return name, frozenset(values)

    return RuleMatch(
        actions=lookup(raw.actions, "actions"),
        token_fields=raw.token_fields,
        tokens=lookup(raw.tokens_any_of, "tokens", "anyOf"),
        value_field=raw.value_field,
        values=lookup(raw.value_any_of, "value", "anyOf"),
    )
