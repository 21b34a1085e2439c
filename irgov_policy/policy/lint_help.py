"""Help that lint adds to its findings: near matches for unknown names, unknown fields of `step`
and `ir`, and selections of optional keys that no `has()` or `in` guards.

A near match is the closest candidate by `difflib`'s ratio (a Cedar-style `help`):
``undeclared reference to `startswith`: did you mean `startsWith`?``. Fields are found in the
text of an expression with its string literals blanked, so a field named inside a string is not
read as one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from .cel_text import blank_strings

__all__ = ["IR_FIELDS", "OPTIONAL_MAPS", "STEP_FIELDS", "FieldFinding", "did_you_mean", "field_findings",
           "undeclared_name"]

# The keys of the `step` and `ir` variables (evaluator.step_variables / ir_variables; a test
# holds these lists to them).
STEP_FIELDS = ("index", "action", "provider", "resource", "params", "constraints", "idempotency_key",
               "budget_cents", "step_id", "description")
IR_FIELDS = ("tenant_id", "request_id", "created_at", "intent_summary", "labels", "step_count", "steps")
# Maps whose keys are the IR author's: any of them may be absent.
OPTIONAL_MAPS = ("step.params", "step.constraints", "ir.labels")

_SELECTION = re.compile(r"(?<![\w.])(step|ir)\s*\.\s*([A-Za-z_]\w*)(\s*\()?")
_OPTIONAL = re.compile(r"(?<![\w.])(step\s*\.\s*params|step\s*\.\s*constraints|ir\s*\.\s*labels)\s*\.\s*"
                       r"([A-Za-z_]\w*)(\s*\()?")
_UNDECLARED = re.compile(r"undeclared reference to (?:function )?`([^`]+)`")
_SPACES = re.compile(r"\s+")


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`: did you mean `X`?` for the closest candidate, or an empty string when none is close."""
    options = sorted(set(candidates) - {name})
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if not close:
        lowered = {option.lower(): option for option in options}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f": did you mean `{close[0]}`?" if close else ""


def undeclared_name(message: str) -> str | None:
    """The name an engine's `undeclared reference` message is about (its first segment when the
    engine reports a qualified name such as `stpe.resource`)."""
    match = _UNDECLARED.search(message)
    return match.group(1) if match else None


class FieldFinding:
    """A finding about one field selection: `severity` is `error` or `warning`."""

    __slots__ = ("message", "offset", "severity")

    def __init__(self, severity: str, offset: int, message: str) -> None:
        self.severity = severity
        self.offset = offset
        self.message = message


def _guarded(blank: str, source: str, container: str, key: str) -> bool:
    """Whether the expression tests the key's presence: `has(container.key)` or `"key" in container`."""
    compact_blank = _SPACES.sub("", blank)
    if f"has({container}.{key})" in compact_blank:
        return True
    compact = _SPACES.sub("", source)
    return any(f"{quote}{key}{quote}in{container}" in compact for quote in ('"', "'"))


def field_findings(source: str, scope: str = "step") -> list[FieldFinding]:
    """Unknown fields of `step` and `ir` (errors: such a selection fails on every IR) and optional
    keys selected without a guard (warnings: the rule fails, and rejects, every IR without them)."""
    blank = blank_strings(source)
    findings: list[FieldFinding] = []
    ir_fields = IR_FIELDS if scope == "ir" else IR_FIELDS[:-1]
    for match in _SELECTION.finditer(blank):
        variable, name, call = match.group(1), match.group(2), match.group(3)
        if call:
            continue
        fields = STEP_FIELDS if variable == "step" else ir_fields
        if name not in fields:
            findings.append(FieldFinding("error", match.start(2), f"unknown field `{variable}.{name}`"
                                         + did_you_mean(name, fields)))
    for match in _OPTIONAL.finditer(blank):
        container, key, call = _SPACES.sub("", match.group(1)), match.group(2), match.group(3)
        if call or _guarded(blank, source, container, key):
            continue
        findings.append(FieldFinding(
            "warning", match.start(2),
            f"`{container}.{key}` is an error on an ir without the key `{key}` (a `RULE_ERROR` reject): "
            f"guard it with `has({container}.{key})`"))
    return findings
