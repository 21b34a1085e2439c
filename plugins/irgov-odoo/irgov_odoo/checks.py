"""The bulk-domain check: an Odoo update or delete that selects every record is a bulk operation.

The baseline recognises bulk operations by the words `bulk` and `batch`; an Odoo write says it
with its domain instead. `[]`, `[(1, '=', 1)]`, `['|', ('a', '=', 1), ('a', '!=', 1)]` or a null
domain all reach every record of the model, so the step is tier 3 (critical). A domain too
large or too dynamic to decide is treated the same way (fail closed); a domain that is not an
Odoo domain at all is an `ODOO_INVALID_DOMAIN` violation. A step without a domain that names no
records either (`ids`, `id`, `res_id`, ...) but asks for a search-based write (`method` `write`
or `unlink`, `search: true`) has no bound at all: bulk as well.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from irgov_policy.model import IR, Step
from irgov_policy.policy.checks import Finding

from .domains import analyse_domain

__all__ = ["BULK_ACTIONS", "BulkDomainCheck", "DOMAIN_KEYS", "RECORD_KEYS"]

# Actions that change or remove existing records (creation has no domain).
BULK_ACTIONS = frozenset({"odoo.update_record", "odoo.delete_record"})
# Where a step carries its Odoo domain; the first present key is used.
DOMAIN_KEYS = ("domain", "search_domain")
# Keys naming the records a write targets.
RECORD_KEYS = ("ids", "id", "record_id", "record_ids", "res_id", "res_ids")
# Methods that write or delete through a search rather than named records.
_SEARCH_METHODS = frozenset({"write", "unlink", "search_write", "search_unlink"})


def _names_records(params: Mapping[str, Any]) -> bool:
    for key in RECORD_KEYS:
        value = params.get(key)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, list | tuple):
            if value:
                return True
        elif isinstance(value, int | str) and str(value).strip():
            return True
    return False


def _asks_for_search(params: Mapping[str, Any]) -> bool:
    method = params.get("method")
    if isinstance(method, str) and method.strip().lower() in _SEARCH_METHODS:
        return True
    return params.get("search") is True


class BulkDomainCheck:
    """`irgov_register_checks` check named `odoo-bulk-domain`; reported as pack
    `plugin:odoo-bulk-domain` with rule ids `odoo.domain-matches-all`, `odoo.domain-undecidable`,
    `odoo.missing-domain` and `odoo.invalid-domain`."""

    name = "odoo-bulk-domain"

    def check_step(self, step: Step, index: int, ir: IR) -> Iterator[Finding]:
        if step.action not in BULK_ACTIONS:
            return
        params = step.params
        key = next((k for k in DOMAIN_KEYS if k in params), None)
        if key is None:
            if not _names_records(params) and _asks_for_search(params):
                yield Finding(rule="odoo.missing-domain", tier=3,
                              reason=f"`{step.action}` searches without a domain and names no records: "
                                     "it reaches every record")
            return
        analysis = analyse_domain(params[key])
        if analysis.verdict == "all":
            yield Finding(rule="odoo.domain-matches-all", tier=3,
                          reason=f"bulk odoo operation: `params.{key}` selects every record ({analysis.message})")
        elif analysis.verdict == "complex":
            yield Finding(rule="odoo.domain-undecidable", tier=3,
                          reason=f"odoo domain in `params.{key}` cannot be bounded: {analysis.message}")
        elif analysis.verdict == "invalid":
            yield Finding(rule="odoo.invalid-domain", code="ODOO_INVALID_DOMAIN",
                          message=f"`params.{key}`: {analysis.message}")
