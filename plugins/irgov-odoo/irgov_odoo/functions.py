"""CEL functions the Odoo pack uses, registered through `irgov_register_cel_functions`.

They take and return plain Python values (both CEL engines adapt their own types at the
boundary) and never raise on odd input: they answer `false` or `[]`, so a rule guarded by them
does not turn a malformed step into a `RULE_ERROR`. The bulk-domain check reports malformed
domains with a precise violation instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from irgov_policy.policy.functions import normalize_text

from .domains import domain_matches_all

__all__ = ["CEL_FUNCTIONS", "odoo_domain_matches_all", "odoo_modules"]

# Separators between module names in one string: commas and whitespace.
_SEPARATORS = re.compile(r"[\s,]+")
_MAX_NAMES = 1000
_MAX_NESTING = 8


def _module_name(text: str) -> str:
    # A resource such as `odoo://erp.example.com/modules/account` names the module last.
    return re.split(r"[/:]", text)[-1].strip()


def _collect(value: Any, out: list[str], depth: int) -> None:
    if len(out) >= _MAX_NAMES:
        return
    if isinstance(value, str):
        for piece in _SEPARATORS.split(normalize_text(value)):
            name = _module_name(piece)
            if name:
                out.append(name)
    elif isinstance(value, list | tuple) and depth < _MAX_NESTING:
        for item in value:
            _collect(item, out, depth + 1)


def odoo_modules(value: Any) -> list[str]:
    """`odooModules(value) -> list(string)`: the technical module names a value refers to.

    A string holds names separated by commas or whitespace, each possibly the last segment of a
    path or URL (`odoo://erp/modules/account` -> `account`); lists are flattened. Names are
    normalised like every text the policy compares (NFKC, format characters removed, lower case).
    Other values name no module."""
    out: list[str] = []
    _collect(value, out, 0)
    return out


def odoo_domain_matches_all(domain: Any) -> bool:
    """`odooDomainMatchesAll(domain) -> bool`: the Odoo domain (a list, or its literal text)
    provably selects every record: `[]`, `[[1, "=", 1]]`, a tautology such as
    `["|", ["a", "=", 1], ["a", "!=", 1]]`, or null."""
    return domain_matches_all(domain)


# Name -> function, exactly as registered.
CEL_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "odooDomainMatchesAll": odoo_domain_matches_all,
    "odooModules": odoo_modules,
}
