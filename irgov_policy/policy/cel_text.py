"""Plain-text facts about CEL expressions, without parsing them: string literals blanked out,
and the fields of `step` an expression selects. Used by lint and by the evaluator to leave out of
an activation what no expression can observe."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["blank_strings", "selected_step_fields"]

_STEP = re.compile(r"\bstep\b")
_STEP_FIELD = re.compile(r"\bstep\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)(\s*\()?")


def blank_strings(source: str) -> str:
    """`source` with the contents of string literals replaced by spaces (offsets kept), so
    names inside strings are not taken for references."""
    out = list(source)
    i = 0
    while i < len(source):
        char = source[i]
        if char in "\"'":
            quote = source[i:i + 3] if source[i:i + 3] in ('"""', "'''") else char
            raw = i > 0 and source[i - 1] in "rR"
            j = i + len(quote)
            while j < len(source) and not source.startswith(quote, j):
                if source[j] == "\\" and not raw:
                    out[j] = " "
                    j += 1
                if j < len(source):
                    out[j] = " "
                j += 1
            i = j + len(quote)
        else:
            i += 1
    return "".join(out)


def selected_step_fields(sources: Iterable[str]) -> frozenset[str] | None:
    """The fields of `step` the expressions select, when `step.FIELD` is the only way any of them
    uses `step`; None when one uses `step` otherwise (`size(step)`, `step.all(...)`, a macro
    variable named `step`, `x.step`), because it may then observe every field."""
    fields: set[str] = set()
    for source in sources:
        blank = blank_strings(source)
        selections = list(_STEP_FIELD.finditer(blank))
        if any(m.group(2) for m in selections) or len(selections) != len(_STEP.findall(blank)):
            return None
        if any(m.start() > 0 and blank[:m.start()].rstrip().endswith(".") for m in selections):
            return None
        fields.update(m.group(1) for m in selections)
    return frozenset(fields)
