"""The CEL functions the Odoo plugin registers, in Python and through both CEL engines."""

from __future__ import annotations

from typing import Any

import pytest
from irgov_odoo.functions import CEL_FUNCTIONS, odoo_modules

from irgov_policy.policy.cel.base import create_engine


@pytest.mark.parametrize(("value", "expected"), [
    ("account", ["account"]),
    (" Account ", ["account"]),
    ("sale, stock  purchase", ["sale", "stock", "purchase"]),
    ("odoo://erp.example.com/modules/web", ["web"]),
    ("module:base", ["base"]),
    ("ba\u200bse", ["base"]),
    (["crm", ["web", "mail"]], ["crm", "web", "mail"]),
    ("", []),
    (7, []),
    (None, []),
    ({"module": "base"}, []),
])
def test_odoo_modules(value: Any, expected: list[str]) -> None:
    assert odoo_modules(value) == expected


@pytest.mark.parametrize(("expression", "expected"), [
    ('odooDomainMatchesAll([])', True),
    ('odooDomainMatchesAll([[1, "=", 1]])', True),
    ('odooDomainMatchesAll(["|", ["a", "=", 1], ["a", "!=", 1]])', True),
    ('odooDomainMatchesAll([["id", "=", 3]])', False),
    ('odooDomainMatchesAll("[]")', True),
    ('odooDomainMatchesAll(7)', False),
    ('odooModules("odoo://erp/modules/account")', ["account"]),
    ('odooModules(["Sale", "web"]).exists(m, m == "web")', True),
    ('odooModules(step.params.module)', ["base"]),
    ('odooDomainMatchesAll(step.params.domain)', True),
])
def test_functions_on_every_engine(engine_name: str, expression: str, expected: Any) -> None:
    engine = create_engine(engine_name, CEL_FUNCTIONS)
    activation = engine.activation({"step": {"params": {"module": "base", "domain": []}}, "ir": {},
                                    "constants": {}})
    assert engine.evaluate(engine.compile(expression), activation) == expected
