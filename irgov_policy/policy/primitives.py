"""Declarative primitives: the pack sections that are not CEL, each with its CEL meaning.

The evaluator runs these natively (set lookups instead of CEL calls, which is most of the work
per step); `cel_expansion()` is what each one means in CEL, over the same `step` variable. A
conformance test evaluates both on generated steps, on every engine, and requires equal results.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PolicyError
from .functions import family, normalize_text, token_set

__all__ = [
    "ActionTierMatch",
    "Primitive",
    "PrimitiveError",
    "ProviderMismatch",
    "RuleMatch",
    "UnknownAction",
    "UnknownProvider",
    "cel_string_list",
]


def cel_string_list(values: Iterable[str]) -> str:
    """A CEL list literal of strings (JSON string escapes are valid CEL escapes)."""
    return "[" + ", ".join(json.dumps(v) for v in sorted(values)) + "]"


def _cel_string_map(mapping: Mapping[str, Iterable[str]]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {cel_string_list(v)}" for k, v in sorted(mapping.items())) + "}"


class Primitive(ABC):
    """A declarative check over one step: `native(step)` and its `cel_expansion()` agree."""

    name: str

    @abstractmethod
    def native(self, step: Mapping[str, Any]) -> bool:
        """The primitive evaluated in Python."""

    @abstractmethod
    def cel_expansion(self) -> str:
        """The same primitive as a CEL expression over `step`."""


@dataclass(frozen=True)
class UnknownAction(Primitive):
    """`vocabularies.actions`: true when the step's action is in no pack's vocabulary."""

    actions: frozenset[str]
    name: str = "vocabularies.actions"

    def native(self, step: Mapping[str, Any]) -> bool:
        return step["action"] not in self.actions

    def cel_expansion(self) -> str:
        return f"!(step.action in {cel_string_list(self.actions)})"


@dataclass(frozen=True)
class UnknownProvider(Primitive):
    """`vocabularies.providers`: true when the step's provider is in no pack's vocabulary."""

    providers: frozenset[str]
    name: str = "vocabularies.providers"

    def native(self, step: Mapping[str, Any]) -> bool:
        return step["provider"] not in self.providers

    def cel_expansion(self) -> str:
        return f"!(step.provider in {cel_string_list(self.providers)})"


@dataclass(frozen=True)
class ProviderMismatch(Primitive):
    """`providerFamilies`: true when a known action is served by a known provider whose family is
    not allowed for the action's family (no entry for the action's family allows none)."""

    actions: frozenset[str]
    providers: frozenset[str]
    families: Mapping[str, frozenset[str]]
    name: str = "providerFamilies"

    def native(self, step: Mapping[str, Any]) -> bool:
        action, provider = step["action"], step["provider"]
        if action not in self.actions or provider not in self.providers:
            return False
        return family(provider) not in self.families.get(family(action), ())

    def cel_expansion(self) -> str:
        families = _cel_string_map(self.families)
        return (
            f"step.action in {cel_string_list(self.actions)}"
            f" && step.provider in {cel_string_list(self.providers)}"
            f" && !(family(step.provider) in (family(step.action) in {families}"
            f" ? {families}[family(step.action)] : []))"
        )


@dataclass(frozen=True)
class ActionTierMatch(Primitive):
    """A `tiers` entry: true when the action is one of `actions` or starts with one of `prefixes`."""

    actions: frozenset[str]
    prefixes: tuple[str, ...]
    name: str = "tiers"

    def native(self, step: Mapping[str, Any]) -> bool:
        action: str = step["action"]
        return action in self.actions or action.startswith(self.prefixes)

    def cel_expansion(self) -> str:
        return (f"step.action in {cel_string_list(self.actions)}"
                f" || {cel_string_list(self.prefixes)}.exists(p, step.action.startsWith(p))")


class PrimitiveError(PolicyError):
    """A primitive that errors where its CEL expansion would produce an error value."""


def _field_cel(field: str) -> tuple[str, str]:
    """(guard, access) of a step field path: `params.model` -> (`"model" in step.params`, `step.params.model`)."""
    if "." in field:
        container, key = field.split(".", 1)
        return f"{json.dumps(key)} in step.{container}", f"step.{container}.{key}"
    return "", f"step.{field}"


def _field_value(step: Mapping[str, Any], field: str) -> tuple[bool, Any]:
    if "." in field:
        container, key = field.split(".", 1)
        mapping = step[container]
        return (key in mapping, mapping.get(key)) if isinstance(mapping, Mapping) else (False, None)
    return True, step[field]


@dataclass(frozen=True)
class RuleMatch(Primitive):
    """A rule's `match`: all given parts hold. `actions`: the action is in a constant list;
    `tokens`: some whole token of one of the fields is in a constant list; `value`: the field,
    normalised, is in a constant list (a non-string value is an error, as in CEL)."""

    actions: tuple[str, frozenset[str]] | None = None
    token_fields: tuple[str, ...] = ()
    tokens: tuple[str, frozenset[str]] | None = None
    value_field: str | None = None
    values: tuple[str, frozenset[str]] | None = None
    name: str = "match"

    def native(self, step: Mapping[str, Any], token_cache: dict[str, frozenset[str]] | None = None) -> bool:
        """`token_cache` keeps each field's tokens for the other rules of the same step."""
        # CEL's `&&` is commutative over errors: any false part makes the whole false, even
        # when another part errors, so the error is raised only after every part is known.
        error: PrimitiveError | None = None
        if self.actions is not None and step["action"] not in self.actions[1]:
            return False
        if self.tokens is not None:
            targets = self.tokens[1]
            found = False
            for field in self.token_fields:
                tokens = token_cache.get(field) if token_cache is not None else None
                if tokens is None:
                    present, value = _field_value(step, field)
                    try:
                        tokens = token_set(value) if present else frozenset()
                    except ValueError as exc:  # too deep, or too many tokens: an error, as in CEL
                        error = PrimitiveError(str(exc))
                        continue
                    if token_cache is not None:
                        token_cache[field] = tokens
                if not targets.isdisjoint(tokens):
                    found = True
                    break
            if found:
                error = None  # `||` over the fields: a match wins over another field's error
            elif error is None:
                return False
        if self.values is not None and self.value_field is not None:
            present, value = _field_value(step, self.value_field)
            if not present:
                return False
            if not isinstance(value, str):
                error = PrimitiveError(f"normalize expects a string, got {type(value).__name__}")
            elif normalize_text(value).strip() not in self.values[1]:
                return False
        if error is not None:
            raise error
        return True

    def cel_expansion(self) -> str:
        parts: list[str] = []
        if self.actions is not None:
            parts.append(f"step.action in constants.{self.actions[0]}")
        if self.tokens is not None:
            alternatives = []
            for field in self.token_fields:
                guard, access = _field_cel(field)
                test = f"hasAnyToken({access}, constants.{self.tokens[0]})"
                alternatives.append(f"({guard} && {test})" if guard else test)
            parts.append("(" + " || ".join(alternatives) + ")")
        if self.values is not None and self.value_field is not None:
            guard, access = _field_cel(self.value_field)
            test = f"normalize({access}) in constants.{self.values[0]}"
            parts.append(f"({guard} && {test})" if guard else test)
        return " && ".join(parts) if parts else "true"
