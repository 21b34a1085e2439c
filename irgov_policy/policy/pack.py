"""Rule packs: the `irgov.dev/v1` `RulePack` format, loaded strictly into frozen objects.

Loading is parse (strict YAML with positions), validate (the shipped draft-07 schema, then
the checks a schema cannot express), build. CEL is compiled later, when packs are composed
into a `PolicySet` for one engine. Every problem is a `SourceProblem` at `file:line:col`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from ..errors import PackLoadError, SourceProblem
from ..hashing import digest_object
from .yaml_strict import DEFAULT_MAX_PACK_BYTES, Located, load_yaml_strict, schema_problems

__all__ = [
    "API_VERSION",
    "DEFAULT_ESCALATION_THRESHOLD",
    "KIND",
    "MatchSpec",
    "PACK_SUFFIX",
    "RulePack",
    "RuleSpec",
    "TierSpec",
    "ViolationSpec",
    "load_pack",
    "parse_pack",
    "rulepack_schema",
]

API_VERSION = "irgov.dev/v1"
KIND = "RulePack"
PACK_SUFFIX = ".irgov.yaml"
DEFAULT_ESCALATION_THRESHOLD = 2

SourcePath = tuple[str | int, ...]


@cache
def rulepack_schema() -> dict[str, Any]:
    """The shipped JSON Schema (draft-07) of a rule pack."""
    text = resources.files("irgov_policy.policy").joinpath("schemas/rulepack.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _is_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _validator() -> jsonschema.protocols.Validator:
    # Draft 7 counts `3.0` as an integer; a tier or threshold written so would then reach
    # decisions and event payloads as a float. YAML integers only.
    checker = jsonschema.Draft7Validator.TYPE_CHECKER.redefine("integer", _is_integer)
    strict = jsonschema.validators.extend(jsonschema.Draft7Validator, type_checker=checker)
    return strict(rulepack_schema())


@dataclass(frozen=True)
class ViolationSpec:
    code: str
    message: str
    severity: str = "ERROR"


@dataclass(frozen=True)
class MatchSpec:
    """The declarative part of a rule (constant names; resolved when packs are composed)."""

    actions: str | None = None
    token_fields: tuple[str, ...] = ()
    tokens_any_of: str | None = None
    value_field: str | None = None
    value_any_of: str | None = None


@dataclass(frozen=True)
class RuleSpec:
    """One rule. Exactly one of (`tier`, `reason`) and `violation` is set; `when` and/or `match`."""

    id: str
    when: str | None = None
    scope: str = "step"
    description: str = ""
    tier: int | None = None
    reason: str | None = None
    violation: ViolationSpec | None = None
    mode: str = "enforce"
    # Where the rule sits in its document, to locate errors in `when`.
    path: SourcePath = ()
    match: MatchSpec | None = None


@dataclass(frozen=True)
class TierSpec:
    """An action tier entry: exact action names and name prefixes."""

    id: str
    tier: int
    reason: str
    actions: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    mode: str = "enforce"
    path: SourcePath = ()


@dataclass(frozen=True)
class RulePack:
    """A loaded, validated pack. `digest` is `ALGO:HEX` of its canonical content (comments and
    formatting do not change it)."""

    name: str
    version: str
    description: str
    digest: str
    file: str
    escalation_threshold: int | None = None
    actions: frozenset[str] | None = None
    providers: frozenset[str] | None = None
    provider_families: Mapping[str, frozenset[str]] = field(default_factory=dict)
    tiers: tuple[TierSpec, ...] = ()
    constants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rules: tuple[RuleSpec, ...] = ()
    source: Located | None = field(default=None, compare=False, repr=False)

    def locate(self, path: SourcePath, offset: int | None = None) -> tuple[int, int]:
        """Line and column of `path` in the pack's file, or of character `offset` inside it."""
        if self.source is None:
            return 1, 1
        if offset is not None:
            return self.source.offset_position(path, offset)
        pos = self.source.position(path)
        return pos.line, pos.column

    def problem(self, path: SourcePath, message: str, offset: int | None = None) -> SourceProblem:
        line, column = self.locate(path, offset)
        return SourceProblem(self.file, line, column, message)

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "digest": self.digest}


def _schema_message(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    prefix = f"`{where}`: " if where else ""
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - allowed) if isinstance(error.instance, dict) else []
        return prefix + "unknown field " + ", ".join(f"`{e}`" for e in extra)
    if error.validator == "required":
        return prefix + str(error.message).replace("'", "`").replace("is a required property", "is required")
    if error.validator == "anyOf" and "when" in error.schema.get("properties", {}):
        return prefix + "a rule needs `when`, `match` or both"
    if error.validator == "oneOf" and "id" in (error.instance or {}):
        return prefix + "a rule has either `tier` and `reason`, or `violation`, not both nor neither"
    if error.validator == "anyOf" and "prefixes" in error.schema.get("properties", {}):
        return prefix + "a tier entry needs `actions` or `prefixes`"
    if error.validator == "const":
        return prefix + f"must be `{error.validator_value}`"
    if error.validator == "enum":
        return prefix + "must be one of " + ", ".join(f"`{v}`" for v in error.validator_value)
    if error.validator == "pattern":
        return prefix + f"`{error.instance}` does not match `{error.validator_value}`"
    message = str(error.message).replace("'", "`")
    return prefix + message[:1].lower() + message[1:]


def _semantic_problems(located: Located) -> list[SourceProblem]:
    """What the schema cannot say: ids unique within the pack."""
    data = located.data
    problems: list[SourceProblem] = []
    seen: dict[str, SourcePath] = {}
    entries = [(("tiers", i), t) for i, t in enumerate(data.get("tiers", []))]
    entries += [(("rules", i), r) for i, r in enumerate(data.get("rules", []))]
    for path, entry in entries:
        ident = entry["id"]
        if ident in seen:
            first = located.position((*seen[ident], "id"))
            problems.append(located.problem((*path, "id"),
                                            f"duplicate id `{ident}` (first used at line {first.line})"))
        else:
            seen[ident] = path
        if path[0] == "rules" and entry.get("scope") == "ir" and "match" in entry:
            problems.append(located.problem((*path, "match"),
                                            f"rule `{ident}`: `match` applies to steps; use `when` in a rule of scope `ir`"))
        if path[0] == "rules" and entry.get("scope") == "ir" and "tier" in entry:
            problems.append(located.problem((*path, "tier"),
                                            f"rule `{ident}`: a rule of scope `ir` reports a `violation`, not a `tier`"))
    return problems


def parse_pack(text: str | bytes, file: str, *, max_bytes: int = DEFAULT_MAX_PACK_BYTES) -> RulePack:
    """Load a pack from its text; `file` names it in error locations."""
    located = load_yaml_strict(text, file, max_bytes=max_bytes)
    if not isinstance(located.data, dict):
        raise PackLoadError([SourceProblem(file, 1, 1, "a rule pack is a yaml mapping")])
    problems = schema_problems(located, _validator(), _schema_message)
    if problems:
        raise PackLoadError(problems)
    problems = _semantic_problems(located)
    if problems:
        raise PackLoadError(problems)
    return _build(located)


def load_pack(path: str | Path, *, max_bytes: int = DEFAULT_MAX_PACK_BYTES) -> RulePack:
    """Read and load the pack at `path`; unreadable and oversize files are load errors."""
    name = str(path)
    try:
        size = Path(path).stat().st_size
        if size > max_bytes:
            raise PackLoadError([SourceProblem(name, 1, 1, f"file of {size} bytes exceeds the limit of {max_bytes}")])
        data = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        raise PackLoadError([SourceProblem(name, 1, 1, f"cannot read rule pack: {reason}")]) from None
    return parse_pack(data, name, max_bytes=max_bytes)


def _match(raw: Any) -> MatchSpec | None:
    if raw is None:
        return None
    tokens = raw.get("tokens", {})
    value = raw.get("value", {})
    return MatchSpec(actions=raw.get("actions"), token_fields=tuple(tokens.get("fields", ())),
                     tokens_any_of=tokens.get("anyOf"), value_field=value.get("field"),
                     value_any_of=value.get("anyOf"))


def _names(values: Any) -> frozenset[str]:
    return frozenset(values)


def _build(located: Located) -> RulePack:
    data = located.data
    meta = data["metadata"]
    vocab = data.get("vocabularies", {})
    tiers = tuple(
        TierSpec(
            id=t["id"], tier=t["tier"], reason=t["reason"], actions=_names(t.get("actions", [])),
            prefixes=tuple(t.get("prefixes", [])), mode=t.get("mode", "enforce"), path=("tiers", i),
        )
        for i, t in enumerate(data.get("tiers", []))
    )
    rules = tuple(
        RuleSpec(
            id=r["id"], when=r.get("when"), match=_match(r.get("match")), scope=r.get("scope", "step"), description=r.get("description", ""),
            tier=r.get("tier"), reason=r.get("reason"),
            violation=ViolationSpec(r["violation"]["code"], r["violation"]["message"],
                                    r["violation"].get("severity", "ERROR")) if "violation" in r else None,
            mode=r.get("mode", "enforce"), path=("rules", i),
        )
        for i, r in enumerate(data.get("rules", []))
    )
    return RulePack(
        name=meta["name"],
        version=meta["version"],
        description=meta.get("description", ""),
        digest=digest_object(data),
        file=located.file,
        escalation_threshold=data.get("escalation", {}).get("threshold"),
        actions=_names(vocab["actions"]) if "actions" in vocab else None,
        providers=_names(vocab["providers"]) if "providers" in vocab else None,
        provider_families={k: _names(v) for k, v in data.get("providerFamilies", {}).items()},
        tiers=tiers,
        constants={k: tuple(v) for k, v in data.get("constants", {}).items()},
        rules=rules,
        source=located,
    )
