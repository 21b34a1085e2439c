"""Plain-text facts about CEL expressions, without parsing them: string literals and comments
blanked out, the fields of `step` an expression selects, the constants it names and how deeply it
nests. Used by lint, by pack loading and by the evaluator to leave out of an activation what no
expression can observe."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["blank_strings", "constant_references", "nesting_depth", "selected_step_fields"]

_STEP = re.compile(r"\bstep\b")
_STEP_FIELD = re.compile(r"\bstep\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)(\s*\()?")
_CONSTANT_DOT = re.compile(r"\bconstants\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_CONSTANT_INDEX = re.compile(r"\bconstants\s*\[\s*")
_STRING = re.compile(r"\"([^\"\\]*)\"|'([^'\\]*)'")
# Tokens after which `[` indexes a value (one more node on the chain) rather than opening a list.
_OPERAND_END = re.compile(r"[A-Za-z0-9_)\]]")


def blank_strings(source: str) -> str:
    """`source` with the contents of string literals and `//` comments replaced by spaces
    (offsets kept), so names inside them are not taken for references."""
    out = list(source)
    i = 0
    while i < len(source):
        char = source[i]
        if source.startswith("//", i):
            end = source.find("\n", i)
            end = len(source) if end == -1 else end
            out[i:end] = " " * (end - i)
            i = end
        elif char in "\"'":
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


def constant_references(source: str) -> list[tuple[str, int]]:
    """`(name, offset)` of every `constants.NAME` and `constants["NAME"]` in a CEL expression."""
    blank = blank_strings(source)
    found = [(m.group(1), m.start(1)) for m in _CONSTANT_DOT.finditer(blank)]
    for match in _CONSTANT_INDEX.finditer(blank):
        literal = _STRING.match(source, match.end())
        if literal is not None:
            found.append((literal.group(1) if literal.group(1) is not None else literal.group(2), match.end()))
    return sorted(found, key=lambda item: item[1])


_SEPARATORS = ("&&", "||")
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "!")


def nesting_depth(source: str, limit: int) -> int | None:
    """The offset where `source` first nests deeper than `limit`, or None.

    Depth approximates the syntax tree's, the way both parsers build it: each bracket opens a
    level; inside a level every operator, member selection (`.name`) and index (`[...]` after a
    value) nests its operand one level deeper (`1 + 1 + 1` is a chain of two), until `&&`, `||`,
    `,` or `:` starts a sibling operand; each `?` nests the rest of its level. Counting brackets
    alone let `!!!...x` or `a.b.c...` chains through to parsers that recurse on them."""
    blank = blank_strings(source)
    # Per open level: [ternaries, operators since the last separator].
    levels: list[list[int]] = [[0, 0]]
    depth = 0
    previous = ""
    i = 0
    while i < len(blank):
        char = blank[i]
        width = 1
        if char.isspace():
            i += 1
            continue
        if char in "([{":
            if char == "[" and _OPERAND_END.match(previous):
                levels[-1][1] += 1
            levels.append([0, 0])
        elif char in ")]}":
            if len(levels) > 1:
                levels.pop()
        elif blank.startswith(_SEPARATORS, i):
            levels[-1][1] = 0
            width = 2
        elif char in ",:":
            levels[-1][1] = 0
        elif char == "?":
            levels[-1][0] += 1
            levels[-1][1] = 0
        elif char == "." and i + 1 < len(blank) and not blank[i + 1].isdigit() and not previous.isdigit():
            levels[-1][1] += 1
        elif blank.startswith(_OPERATORS, i):
            width = 2 if blank.startswith(("==", "!=", "<=", ">="), i) else 1
            levels[-1][1] += 1
        elif blank.startswith("in", i) and not _OPERAND_END.match(blank[i + 2:i + 3] or " ") \
                and not (previous.isalnum() or previous == "_"):
            levels[-1][1] += 1
            width = 2
        depth = len(levels) - 1 + sum(t + r for t, r in levels)
        if depth > limit:
            return i
        previous = blank[i + width - 1]
        i += width
    return None
