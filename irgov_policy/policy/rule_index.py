"""Rule indexing: which step rules can hold for a step, known from its action and provider alone.

At pack load each step rule is read for conditions that fix the step's action or provider: a
`match.actions` list, or a `when` whose top-level conjunction has a term such as
`step.action == "x"`, `step.action in ["x", "y"]`, `step.action in constants.NAME`,
`step.action.startsWith("dns.")` or `family(step.provider) == "odoo"`. Such a rule cannot hold for a
step that term refuses: CEL's `&&` is false as soon as one operand is false, even when another
errors, so skipping it changes no decision, hit or error. A rule without such a term (or with a
`||` or `?:` at its top level) runs for every step.

Of the rules a step's action and provider allow, those with a content guard (`content_guards.py`:
`hasToken(step.params, "x")`, `"key" in step.params`, ...) run alone, and only when no guard
refutes them; the others run together in one batch program per set of rules.

The reading is textual and conservative: only plain string literals (no escapes, raw or triple
quoted strings) and whole terms are recognised; anything else leaves the rule unindexed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cel_text import blank_strings

if TYPE_CHECKING:
    from .content_guards import ContentGuard
    from .policyset import CompiledRule

__all__ = ["GuardedRule", "StepPlan", "StepPlanner", "StepRequirement", "conjuncts", "inline_constants",
           "requirements_of"]

# Bounds on what the planner remembers: (action, provider) pairs come from untrusted IRs.
MAX_PLANNED_PAIRS = 4096
MAX_BATCH_PROGRAMS = 1024


@dataclass(frozen=True)
class StepRequirement:
    """A condition on one step field (`action` or `provider`): the value is one of `values` or
    starts with one of `prefixes`."""

    field: str
    values: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    def admits(self, action: str, provider: str) -> bool:
        value = action if self.field == "action" else provider
        return value in self.values or (bool(self.prefixes) and value.startswith(self.prefixes))


_LITERAL = r"(?:\"([^\"\\\n]*)\"|'([^'\\\n]*)')"
_FIELD = r"step\s*\.\s*(action|provider)"
_FAMILY = rf"family\s*\(\s*{_FIELD}\s*\)"
_LIST = rf"\[\s*(?:{_LITERAL}\s*(?:,\s*{_LITERAL}\s*)*,?\s*)?\]"
_ONE_LITERAL = re.compile(_LITERAL)
_EQUALS = re.compile(rf"{_FIELD}\s*==\s*{_LITERAL}")
_EQUALS_REVERSED = re.compile(rf"{_LITERAL}\s*==\s*{_FIELD}")
_IN_LIST = re.compile(rf"{_FIELD}\s+in\s+({_LIST})")
_IN_CONSTANT = re.compile(rf"{_FIELD}\s+in\s+constants\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*{_LITERAL}\s*\])")
_STARTS_WITH = re.compile(rf"{_FIELD}\s*\.\s*startsWith\s*\(\s*{_LITERAL}\s*\)")
_FAMILY_EQUALS = re.compile(rf"{_FAMILY}\s*==\s*{_LITERAL}")
_FAMILY_IN_LIST = re.compile(rf"{_FAMILY}\s+in\s+({_LIST})")
_OPEN, _CLOSE = "([{", ")]}"


def _literal(match: re.Match[str], first: int) -> str:
    """The text of a `_LITERAL` whose groups start at `first` (double- or single-quoted)."""
    double = match.group(first)
    return double if double is not None else match.group(first + 1)


def _literals(text: str) -> list[str]:
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _ONE_LITERAL.finditer(text)]


def _strip_parentheses(source: str) -> str:
    """`source` without parentheses that wrap all of it."""
    text = source.strip()
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        blank = blank_strings(text)
        for i, char in enumerate(blank):
            depth += char in _OPEN
            depth -= char in _CLOSE
            if depth == 0 and i < len(text) - 1:
                return text  # the first parenthesis closes before the end: `(a) && (b)`
        text = text[1:-1].strip()
    return text


def conjuncts(source: str) -> list[str]:
    """The terms of the top-level `&&` chain of an expression (the whole expression when it has
    none); empty when its top level has `||` or `?`, whose terms need not all hold."""
    text = _strip_parentheses(source)
    blank = blank_strings(text)
    depth = 0
    cuts = [0]
    i = 0
    while i < len(blank):
        char = blank[i]
        if char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif depth == 0:
            if blank.startswith("||", i) or char == "?":
                return []
            if blank.startswith("&&", i):
                cuts.append(i)
                i += 2
                continue
        i += 1
    terms = []
    for start, end in zip(cuts, [*cuts[1:], len(text)], strict=True):
        term = text[start:end]
        terms.append(term[2:] if term.startswith("&&") else term)
    found: list[str] = []
    for term in terms:
        inner = _strip_parentheses(term)
        nested = conjuncts(inner) if inner != term.strip() else []
        found.extend(nested or [inner])
    return found


def _family_requirement(field: str, families: Iterable[str]) -> StepRequirement:
    names = tuple(families)
    # `family(x) == "f"` holds exactly when x is `f` or starts with `f.`.
    return StepRequirement(field, frozenset(names), tuple(f"{name}." for name in names))


def _term_requirement(term: str, constants: Mapping[str, list[str]]) -> StepRequirement | None:
    text = term.strip()
    if (match := _EQUALS.fullmatch(text)) is not None:
        return StepRequirement(match.group(1), frozenset({_literal(match, 2)}))
    if (match := _EQUALS_REVERSED.fullmatch(text)) is not None:
        return StepRequirement(match.group(3), frozenset({_literal(match, 1)}))
    if (match := _IN_LIST.fullmatch(text)) is not None:
        return StepRequirement(match.group(1), frozenset(_literals(match.group(2))))
    if (match := _IN_CONSTANT.fullmatch(text)) is not None:
        name = match.group(2) if match.group(2) is not None else _literal(match, 3)
        values = constants.get(name)
        if values is None or not all(isinstance(v, str) for v in values):
            return None
        return StepRequirement(match.group(1), frozenset(values))
    if (match := _STARTS_WITH.fullmatch(text)) is not None:
        return StepRequirement(match.group(1), prefixes=(_literal(match, 2),))
    if (match := _FAMILY_EQUALS.fullmatch(text)) is not None:
        return _family_requirement(match.group(1), [_literal(match, 2)])
    if (match := _FAMILY_IN_LIST.fullmatch(text)) is not None:
        return _family_requirement(match.group(1), _literals(match.group(2)))
    return None


def requirements_of(when: str | None, match_actions: frozenset[str] | None,
                    constants: Mapping[str, list[str]]) -> tuple[StepRequirement, ...]:
    """What a step rule requires of the step's action and provider to hold at all (empty: the
    rule may hold for any step). `match_actions` is its resolved `match.actions` list."""
    found: list[StepRequirement] = []
    if match_actions is not None:
        found.append(StepRequirement("action", match_actions))
    if when is not None:
        for term in conjuncts(when):
            requirement = _term_requirement(term, constants)
            if requirement is not None:
                found.append(requirement)
    return tuple(found)


_CONSTANT_SELECTION = re.compile(r"\bconstants\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*" + _LITERAL + r"\s*\])")
_NAME = {name: re.compile(rf"\b{name}\b") for name in ("ir", "constants")}
# cel-cpp refuses expressions over 100,000 code points: batch programs are cut well below.
MAX_BATCH_CHARACTERS = 60_000


def _cel_list(values: Iterable[str]) -> str:
    # JSON string escapes are CEL escapes; non-ASCII stays literal (CEL has no surrogate pairs).
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def inline_constants(source: str, constants: Mapping[str, list[str]]) -> str:
    """`source` with each `constants.NAME` / `constants["NAME"]` replaced by its list literal, so
    that an activation need not carry every constant for every step; `source` unchanged when it
    uses `constants` in any other way."""
    blank = blank_strings(source)
    out: list[str] = []
    last = 0
    for match in _CONSTANT_SELECTION.finditer(source):
        if blank[match.start()] != "c":
            continue  # inside a string literal or a comment
        name = match.group(1) if match.group(1) is not None else _literal(match, 2)
        if name not in constants:
            return source
        out.append(source[last:match.start()])
        out.append(_cel_list(constants[name]))
        last = match.end()
    inlined = "".join(out) + source[last:]
    if _NAME["constants"].search(blank_strings(inlined)):
        return source
    return inlined


class GuardedRule:
    """A rule with content guards: its guards, and its own program (constants inlined), compiled
    the first time no guard refutes it (most guarded rules never run for most steps)."""

    __slots__ = ("_compile", "_program", "guards", "rule", "text")

    def __init__(self, rule: CompiledRule, text: str, compile_program: Callable[[str], Any]) -> None:
        self.rule = rule
        self.guards: tuple[ContentGuard, ...] = rule.guards
        self.text = text
        self._compile = compile_program
        self._program: Any = None

    @property
    def program(self) -> Any:
        if self._program is None:  # a race compiles twice, harmlessly
            self._program = self._compile(self.text)
        return self._program


@dataclass(frozen=True)
class StepPlan:
    """The step rules to run for one (action, provider), in pack order; the batch programs that
    evaluate the `when` of the unguarded ones into lists, each with its rules; the variables
    (`ir`, `constants`) the programs read besides `step`; and per rule (`entries`, in the order
    of `rules`) where its `when` comes from: None (it has none), the index of its value in the
    batch results, or its `GuardedRule`."""

    rules: tuple[CompiledRule, ...]
    batch_rules: tuple[CompiledRule, ...]
    batches: tuple[tuple[Any, tuple[CompiledRule, ...]], ...]
    variables: tuple[str, ...]
    entries: tuple[tuple[CompiledRule, int | GuardedRule | None], ...] = ()


class StepPlanner:
    """Plans per (action, provider), memoised: actions and providers repeat across steps and IRs,
    and so do the sets of rules they select, whose batch programs are compiled once each."""

    def __init__(self, rules: tuple[CompiledRule, ...], constants: Mapping[str, list[str]],
                 compile_batch: Callable[[str], Any], *, indexed: bool = True) -> None:
        self.rules = rules
        self.indexed = indexed and any(rule.requirements or rule.guards for rule in rules)
        self._compile = compile_batch
        self._texts = {i: inline_constants(rule.spec.when, constants) for i, rule in enumerate(rules)
                       if rule.spec.when is not None}
        # Unindexed plans run every rule in CEL: the reference the property test compares with.
        self._guarded = {i: GuardedRule(rules[i], self._texts[i], compile_batch) for i in self._texts
                         if self.indexed and rules[i].guards}
        self._plans: dict[tuple[str, str], StepPlan] = {}
        self._programs: dict[tuple[int, ...], StepPlan] = {}
        if not self.indexed:
            self._full = self._build(tuple(range(len(rules))))

    def plan(self, action: str, provider: str) -> StepPlan:
        if not self.indexed:
            return self._full
        key = (action, provider)
        found = self._plans.get(key)
        if found is None:
            chosen = tuple(i for i, rule in enumerate(self.rules)
                           if all(r.admits(action, provider) for r in rule.requirements))
            found = self._programs.get(chosen) or self._build(chosen)
            if len(self._plans) < MAX_PLANNED_PAIRS:
                self._plans[key] = found
        return found

    def _build(self, chosen: tuple[int, ...]) -> StepPlan:
        rules = tuple(self.rules[i] for i in chosen)
        with_when = [i for i in chosen if i in self._texts]
        batched = [i for i in with_when if i not in self._guarded]
        position = {i: n for n, i in enumerate(batched)}
        entries = tuple((self.rules[i], position[i] if i in position else self._guarded.get(i)) for i in chosen)
        batches: list[tuple[Any, tuple[CompiledRule, ...]]] = []
        chunk: list[int] = []
        size = 0
        for i in batched:
            text = self._texts[i]
            if chunk and size + len(text) > MAX_BATCH_CHARACTERS:
                batches.append(self._batch(chunk))
                chunk, size = [], 0
            chunk.append(i)
            size += len(text) + 4
        if chunk:
            batches.append(self._batch(chunk))
        texts = [blank_strings(self._texts[i]) for i in with_when]
        variables = tuple(name for name, pattern in _NAME.items() if any(pattern.search(t) for t in texts))
        plan = StepPlan(rules, tuple(self.rules[i] for i in batched), tuple(batches), variables, entries)
        if len(self._programs) < MAX_BATCH_PROGRAMS:
            self._programs[chosen] = plan
        return plan

    def _batch(self, chunk: list[int]) -> tuple[Any, tuple[CompiledRule, ...]]:
        source = "[" + ",\n".join(f"({self._texts[i]})" for i in chunk) + "]"
        return self._compile(source), tuple(self.rules[i] for i in chunk)
