"""Odoo search domains: does a domain select every record of a model?

A domain is a list in Polish (prefix) notation: leaves `[field, operator, value]`, the unary
operator `"!"` and the binary operators `"&"` and `"|"`; consecutive top-level expressions are
joined by an implicit `"&"`; the empty domain selects every record. `[1, "=", 1]` and
`[0, "=", 1]` are Odoo's constant true and false leaves.

Deciding "matches every record" treats each distinct field condition as a free boolean variable
and checks that the domain is true under every assignment (a tautology), so `[]`, `[(1,'=',1)]`,
`['|', ('a','=',1), ('a','!=',1)]` and `['!', (0,'=',1)]` are all found. Odoo's `!=`, `not in`,
`not like`, ... include NULL rows, so they are exact complements of `=`, `in`, `like`, ... and
are encoded as the negation of the same variable. A few leaves are true of every record whatever
the data (`('id', '!=', False)`, `('id', '>', 0)`, `(f, 'not in', [])`, `(f, '=?', False)`).

Assignments are enumerated as bit sets (one Python integer per variable, one bit per
assignment), so 16 variables cost a few integer operations per term. A domain with more distinct
conditions than that cannot be decided here and is reported as `complex`, which callers treat as
unbounded (fail closed).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "MAX_DOMAIN_TERMS",
    "MAX_DOMAIN_VARIABLES",
    "DomainAnalysis",
    "analyse_domain",
    "domain_matches_all",
]

MAX_DOMAIN_TERMS = 1000
MAX_DOMAIN_VARIABLES = 16
_MAX_DOMAIN_TEXT = 20_000

Verdict = Literal["all", "bounded", "complex", "invalid"]

# Operator -> (positive operator, negated?). A negated operator is the complement of its positive
# form in Odoo (NULL rows included), so both map onto one variable.
_OPERATORS: dict[str, tuple[str, bool]] = {
    "=": ("=", False), "!=": ("=", True), "<>": ("=", True),
    "in": ("in", False), "not in": ("in", True),
    "like": ("like", False), "not like": ("like", True),
    "ilike": ("ilike", False), "not ilike": ("ilike", True),
    "=like": ("=like", False), "=ilike": ("=ilike", False),
    "any": ("any", False), "not any": ("any", True),
    "<": ("<", False), "<=": ("<=", False), ">": (">", False), ">=": (">=", False),
    "=?": ("=?", False), "child_of": ("child_of", False), "parent_of": ("parent_of", False),
}
_LOGICAL = frozenset({"&", "|", "!"})


@dataclass(frozen=True)
class DomainAnalysis:
    """`verdict`: `all` (selects every record), `bounded` (provably does not), `complex` (too
    many conditions, or not a literal, to decide) or `invalid` (not an Odoo domain);
    `message` says why, for explanations."""

    verdict: Verdict
    message: str

    @property
    def matches_all(self) -> bool:
        return self.verdict == "all"

    @property
    def unbounded(self) -> bool:
        """True unless the domain provably selects fewer than every record (fail closed)."""
        return self.verdict in ("all", "complex")


def _is_int(value: Any, wanted: int) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) and value == wanted


def _falsy(value: Any) -> bool:
    return value is None or value is False


def _constant_leaf(field: Any, operator: str, value: Any) -> bool | None:
    """The truth of a leaf that does not depend on any record, else None."""
    if _is_int(field, 1) and operator == "=" and _is_int(value, 1):
        return True
    if _is_int(field, 0) and operator == "=" and _is_int(value, 1):
        return False
    if operator == "=?" and (_falsy(value) or value == "" or value == []):
        return True
    if operator in ("in", "not in") and isinstance(value, list | tuple) and not value:
        return operator == "not in"
    if field == "id":
        if operator == "!=" and (_falsy(value) or _is_int(value, 0)):
            return True
        if operator == "=" and _falsy(value):
            return False
        # Ids start at 1, so `id > 0` and `id >= 1` hold for every record.
        numeric = not isinstance(value, bool) and isinstance(value, int | float)
        if numeric and (operator == ">" and value < 1 or operator == ">=" and value <= 1):
            return True
    return None


def _key(field: str, operator: str, value: Any) -> str:
    return json.dumps([field, operator, value], sort_keys=True, default=repr)


def _parse_text(text: str) -> Any:
    if len(text) > _MAX_DOMAIN_TEXT:
        raise _Complex(f"domain text of {len(text)} characters is too long to analyse")
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        # Domains written for Odoo's evaluator may use `uid`, `context_today()`, ...: valid for
        # Odoo, but nothing here can tell which records they select.
        raise _Complex("domain text is not a literal list and cannot be analysed") from None


class _Complex(Exception):
    pass


class _Invalid(Exception):
    pass


def _terms(domain: Any) -> Sequence[Any]:
    if isinstance(domain, str):
        domain = _parse_text(domain)
    if not isinstance(domain, list | tuple):
        raise _Invalid(f"a domain is a list of terms, not {type(domain).__name__}")
    if len(domain) > MAX_DOMAIN_TERMS:
        raise _Complex(f"domain of {len(domain)} terms exceeds {MAX_DOMAIN_TERMS}")
    return domain


# A term once classified: a logical operator, a constant truth or a variable (index, negated).
_Op = tuple[Literal["op"], str]
_Const = tuple[Literal["const"], bool]
_Var = tuple[Literal["var"], int, bool]


def _classify(terms: Sequence[Any]) -> tuple[list[_Op | _Const | _Var], int]:
    variables: dict[str, int] = {}
    out: list[_Op | _Const | _Var] = []
    for index, term in enumerate(terms):
        if isinstance(term, str):
            if term not in _LOGICAL:
                raise _Invalid(f"term {index}: `{term}` is not a domain operator (`&`, `|`, `!`)")
            out.append(("op", term))
            continue
        if not isinstance(term, list | tuple) or len(term) != 3:
            raise _Invalid(f"term {index}: a condition is `[field, operator, value]`")
        field, raw_operator, value = term
        if not isinstance(raw_operator, str) or raw_operator.strip().lower() not in _OPERATORS:
            raise _Invalid(f"term {index}: `{raw_operator}` is not an odoo operator")
        operator = raw_operator.strip().lower()
        constant = _constant_leaf(field, operator, value)
        if constant is not None:
            out.append(("const", constant))
            continue
        if not isinstance(field, str) or not field.strip():
            raise _Invalid(f"term {index}: the field of a condition is a non-empty string")
        positive, negated = _OPERATORS[operator]
        key = _key(field.strip(), positive, value)
        if key not in variables:
            variables[key] = len(variables)
            if len(variables) > MAX_DOMAIN_VARIABLES:
                raise _Complex(f"domain has more than {MAX_DOMAIN_VARIABLES} distinct conditions")
        out.append(("var", variables[key], negated))
    return out, len(variables)


def _evaluate(terms: list[_Op | _Const | _Var], count: int) -> tuple[int, int]:
    """The set of assignments (as bits) under which the domain holds, and the full set."""
    size = 1 << count
    full = (1 << size) - 1
    # Variable i holds in the assignments whose index has bit i set: blocks of 2**i zeros then
    # 2**i ones, repeated; `full // (2**(2**i) + 1)` is that pattern starting with ones.
    masks = [(full // ((1 << (1 << i)) + 1)) << (1 << i) for i in range(count)]
    stack: list[int] = []
    # Prefix notation reads right to left onto a stack.
    for term in reversed(terms):
        if term[0] == "const":
            stack.append(full if term[1] else 0)
        elif term[0] == "var":
            mask = masks[term[1]]
            stack.append(full ^ mask if term[2] else mask)
        elif term[1] == "!":
            if not stack:
                raise _Invalid("operator `!` has no operand")
            stack.append(full ^ stack.pop())
        else:
            if len(stack) < 2:
                raise _Invalid(f"operator `{term[1]}` needs two operands")
            left, right = stack.pop(), stack.pop()
            stack.append(left & right if term[1] == "&" else left | right)
    result = full
    for value in stack:  # implicit `&` between top-level expressions
        result &= value
    return result, full


def analyse_domain(domain: Any) -> DomainAnalysis:
    """Classify an Odoo domain (a list, or its text as a Python literal). `None` is Odoo's
    "no domain": every record."""
    if domain is None:
        return DomainAnalysis("all", "the domain is null, which selects every record")
    try:
        terms, count = _classify(_terms(domain))
        if not terms:
            return DomainAnalysis("all", "the domain is empty, which selects every record")
        result, full = _evaluate(terms, count)
    except _Invalid as exc:
        return DomainAnalysis("invalid", f"invalid odoo domain: {exc}")
    except _Complex as exc:
        return DomainAnalysis("complex", str(exc))
    if result == full:
        return DomainAnalysis("all", "the domain is true for every record")
    return DomainAnalysis("bounded", "the domain selects a subset of the records")


def domain_matches_all(domain: Any) -> bool:
    """`odooDomainMatchesAll(domain) -> bool`: the domain provably selects every record.
    False for an invalid or undecidable domain (the bulk-domain check reports those)."""
    return analyse_domain(domain).matches_all
