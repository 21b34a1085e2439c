"""The fixtures and helpers of irgov_policy.testing, as this plugin relies on them."""

from __future__ import annotations

from collections.abc import Callable

import irgov_odoo.plugin as odoo_plugin
import pytest

from irgov_policy.errors import PluginError
from irgov_policy.hookspecs import hookimpl
from irgov_policy.testing import (
    EngineFactory,
    assert_decision,
    assert_hit,
    assert_no_hit,
    build_engine,
    make_ir,
    make_step,
)


def test_failed_assertions_explain_the_decision(irgov_engine_factory: EngineFactory) -> None:
    decision = irgov_engine_factory(plugins=[odoo_plugin]).evaluate(
        make_ir(make_step("odoo.update_record", params={"model": "res.users", "ids": [1]})))
    with pytest.raises(AssertionError) as failure:
        assert_decision(decision, status="PASS", tier=0, codes=["X"], hits=["nope"], no_hits=["odoo.critical-model"])
    text = str(failure.value)
    for part in ("status is ESCALATE, expected PASS", "tier is 3, expected 0", "violation codes are [], expected ['X']",
                 "rules did not fire: ['nope']", "rules fired but should not: ['odoo.critical-model']",
                 "hit odoo/odoo.critical-model tier 3 [enforce]"):
        assert part in text
    with pytest.raises(AssertionError, match="rule `odoo.critical-model` did not fire on step 0 with tier=2"):
        assert_hit(decision, "odoo.critical-model", step=0, tier=2)
    with pytest.raises(AssertionError, match="rule `odoo.critical-model` fired on step 0"):
        assert_no_hit(decision, "odoo.critical-model", step=0)


def test_the_factory_caches_and_isolates(irgov_engine_factory: EngineFactory) -> None:
    assert irgov_engine_factory(plugins=[odoo_plugin]) is irgov_engine_factory(plugins=[odoo_plugin])
    assert [p.name for p in irgov_engine_factory().packs] == ["baseline"]


def test_make_step_defaults() -> None:
    first, second = make_step("dns.update_records"), make_step("dns.update_records", idempotency_key=None)
    assert first["provider"] == "dns.cloudflare" and first["idempotency_key"].startswith("test-key-")
    assert "idempotency_key" not in second
    decision = build_engine().evaluate(make_ir(second))
    assert_decision(decision, status="REJECT", codes=["MISSING_IDEMPOTENCY_KEY"])


class Misspelt:
    @hookimpl
    def irgov_register_check(self, register: Callable[..., None]) -> None:
        register(lambda step, index, ir: [])


def test_a_misspelt_hook_fails_like_an_installed_plugin() -> None:
    with pytest.raises(PluginError, match="unknown hook"):
        build_engine(plugins=[Misspelt()])


def test_cel_function_names_cannot_clash() -> None:
    with pytest.raises(PluginError, match="`odooModules` is registered twice"):
        build_engine(plugins=[odoo_plugin], functions={"odooModules": lambda value: []})
