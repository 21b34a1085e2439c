"""Content guards: terms of a step rule's `when` that Python can decide from the step's values
before any CEL runs, so that a rule whose guard is false costs a set lookup instead of a call
into the CEL engine.

Rule indexing (`rule_index.py`) picks the rules a step's action and provider allow; most of
those then test the step's content: `hasToken(step.params, "x")`, `hasAnyToken(step.resource,
constants.NAME)`, `"key" in step.params`, `step.resource.startsWith("site:")`. A guard is such a
term of the top-level `&&` chain. CEL's `&&` is false as soon as one operand is false, even when
another errors, so a rule with a false guard is false: it is skipped with no change to any
decision, hit or error. A guard that holds, errors or meets a value of another type than it
expects decides nothing, and the rule runs in CEL as it would have.

The Python side computes what the CEL function computes, on the same values: token sets come
from `functions.token_set` (kept per step and field, shared with the native `match` primitive),
wanted tokens from `functions.match_keys`. As in `rule_index.py` the reading is textual and
conservative: plain string literals only, whole terms only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from .functions import match_keys, token_set

__all__ = ["ContentGuard", "guards_of"]

# The fields a guard may read: every key of the `step` variable and of the `ir` variable of a
# step rule (evaluator.step_variables / ir_variables; `ir.steps` is not there for step rules).
STEP_FIELDS = frozenset({"action", "provider", "resource", "params", "constraints", "idempotency_key",
                         "budget_cents", "step_id", "description", "index"})
IR_FIELDS = frozenset({"tenant_id", "request_id", "created_at", "intent_summary", "labels", "step_count"})
# The CEL functions a guard stands for: a pack engine built with another function of one of these
# names (only possible outside the plugin registry, which reserves them) gets no token guards.
GUARDED_FUNCTIONS = frozenset({"hasToken", "hasAnyToken"})

_LITERAL = r"(?:\"([^\"\\\n]*)\"|'([^'\\\n]*)')"
_ONE_LITERAL = re.compile(_LITERAL)
_VALUE = r"(step|ir)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)"
_LIST = rf"\[\s*(?:{_LITERAL}\s*(?:,\s*{_LITERAL}\s*)*,?\s*)?\]"
_HAS_TOKEN = re.compile(rf"hasToken\s*\(\s*{_VALUE}\s*,\s*{_LITERAL}\s*\)")
_HAS_ANY_LIST = re.compile(rf"hasAnyToken\s*\(\s*{_VALUE}\s*,\s*({_LIST})\s*\)")
_HAS_ANY_CONSTANT = re.compile(
    rf"hasAnyToken\s*\(\s*{_VALUE}\s*,\s*constants\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*{_LITERAL}\s*\])\s*\)")
_KEY_IN = re.compile(rf"{_LITERAL}\s+in\s+{_VALUE}")
_STRING_TEST = re.compile(rf"{_VALUE}\s*\.\s*(startsWith|endsWith|contains)\s*\(\s*{_LITERAL}\s*\)")


def _literal(match: re.Match[str], first: int) -> str:
    double = match.group(first)
    return double if double is not None else match.group(first + 1)


def _literals(text: str) -> list[str]:
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _ONE_LITERAL.finditer(text)]


@dataclass(frozen=True)
class ContentGuard:
    """One term: `kind` `tokens` (some whole token of the value is in `wanted`, as match keys),
    `key` (the value is a map with the key `wanted[0]`), or a string test (`startsWith`,
    `endsWith`, `contains` with `wanted[0]`) of the `field` of `variable` (`step` or `ir`)."""

    kind: str
    variable: str
    field: str
    wanted: frozenset[str] | tuple[str, ...]
    # Where the field's token set is kept among the step's (the `match` primitives use the field name).
    _key: str = dataclass_field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", self.field if self.variable == "step" else f"\0ir.{self.field}")

    def refutes(self, step: Mapping[str, Any], ir: Mapping[str, Any], tokens: dict[str, frozenset[str]]) -> bool:
        """True only when the term is certainly false for this step. `tokens` keeps the token
        sets of the step's fields for the other guards and `match` primitives of the step."""
        kind = self.kind
        if kind == "tokens":
            key = self._key
            found = tokens.get(key)
            if found is not None:
                return self.wanted.isdisjoint(found)  # type: ignore[union-attr]
            value = step.get(self.field) if self.variable == "step" else ir.get(self.field)
            try:
                found = token_set(value)
            except ValueError:  # too deep or too many tokens: an error in CEL, which decides it
                return False
            tokens[key] = found
            return self.wanted.isdisjoint(found)  # type: ignore[union-attr]
        value = step.get(self.field) if self.variable == "step" else ir.get(self.field)
        wanted = self.wanted[0]  # type: ignore[index]
        if kind == "key":
            return type(value) is dict and wanted not in value
        if type(value) is not str:
            return False  # CEL errors or compares otherwise: let it decide
        if kind == "startsWith":
            return not value.startswith(wanted)
        if kind == "endsWith":
            return not value.endswith(wanted)
        return wanted not in value


def _field_known(variable: str, field: str) -> bool:
    return field in (STEP_FIELDS if variable == "step" else IR_FIELDS)


def _term_guard(term: str, constants: Mapping[str, list[str]], tokens_allowed: bool) -> ContentGuard | None:
    text = term.strip()
    if tokens_allowed:
        if (match := _HAS_TOKEN.fullmatch(text)) is not None:
            wanted: frozenset[str] = match_keys(_literal(match, 3))
            return ContentGuard("tokens", match.group(1), match.group(2), wanted)
        if (match := _HAS_ANY_LIST.fullmatch(text)) is not None:
            wanted = frozenset(key for v in _literals(match.group(3)) for key in match_keys(v))
            return ContentGuard("tokens", match.group(1), match.group(2), wanted)
        if (match := _HAS_ANY_CONSTANT.fullmatch(text)) is not None:
            name = match.group(3) if match.group(3) is not None else _literal(match, 4)
            values = constants.get(name)
            if values is None or not all(isinstance(v, str) for v in values):
                return None
            return ContentGuard("tokens", match.group(1), match.group(2),
                                frozenset(key for v in values for key in match_keys(v)))
    if (match := _KEY_IN.fullmatch(text)) is not None:
        return ContentGuard("key", match.group(3), match.group(4), (_literal(match, 1),))
    if (match := _STRING_TEST.fullmatch(text)) is not None:
        return ContentGuard(match.group(3), match.group(1), match.group(2), (_literal(match, 4),))
    return None


def guards_of(terms: list[str], constants: Mapping[str, list[str]], *,
              tokens_allowed: bool = True) -> tuple[ContentGuard, ...]:
    """The content guards among `terms`, the top-level conjuncts of a step rule's `when`
    (`rule_index.conjuncts`). `tokens_allowed=False` leaves out the token guards (an engine
    whose `hasToken` or `hasAnyToken` is not the project's)."""
    found = []
    for term in terms:
        guard = _term_guard(term, constants, tokens_allowed)
        if guard is not None and _field_known(guard.variable, guard.field):
            found.append(guard)
    return tuple(found)
