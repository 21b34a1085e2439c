"""How the Odoo plugin changes decisions against the baseline pack alone, on every CEL engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import irgov_odoo.plugin as odoo_plugin
import pytest
from irgov_odoo import odoo_pack_path

from irgov_policy.policy.cel.base import available_engines
from irgov_policy.policy.evaluator import PolicyEngine
from irgov_policy.policy.pack import load_pack
from irgov_policy.policy.shipped import baseline_pack_path
from irgov_policy.testing import (
    EngineFactory,
    EventCapture,
    assert_decision,
    assert_hit,
    assert_no_hit,
    assert_policy_tests_pass,
    fired_rules,
    make_ir,
    make_step,
)


def odoo_step(action: str = "odoo.update_record", **params: Any) -> dict[str, Any]:
    return make_step(action, resource="odoo://erp.example.com", params=params)


@pytest.fixture
def engines(irgov_engine_factory: EngineFactory, engine_name: str) -> tuple[PolicyEngine, PolicyEngine]:
    """(baseline alone, baseline + the Odoo plugin) on one CEL engine."""
    return (irgov_engine_factory(engine=engine_name),
            irgov_engine_factory(plugins=[odoo_plugin], engine=engine_name))


# (step, baseline status and tier, with the plugin: status, tier, rule that makes the difference)
CHANGED = {
    "users are critical": (
        odoo_step(model="res.users", ids=[7], values={"groups_id": [[4, 2]]}),
        ("PASS", 0), ("ESCALATE", 3, "odoo.critical-model")),
    "access rights are critical": (
        odoo_step("odoo.create_record", model=" IR.Model.Access ", values={"perm_unlink": True}),
        ("PASS", 0), ("ESCALATE", 3, "odoo.critical-model")),
    "record rules are critical": (
        odoo_step(model="ir.rule", ids=[3], values={"domain_force": "[]"}),
        ("PASS", 0), ("ESCALATE", 3, "odoo.critical-model")),
    "journal items are critical": (
        odoo_step(model="account.move.line", ids=[10], values={"name": "fix"}),
        ("PASS", 0), ("ESCALATE", 3, "odoo.critical-model")),
    "cancelling a bank statement line": (
        odoo_step(model="account.bank.statement.line", ids=[4], method="button_cancel"),
        ("PASS", 0), ("ESCALATE", 3, "odoo.accounting-post-cancel")),
    "posting through values.state": (
        odoo_step(model="account.analytic.line", ids=[4], values={"state": " Posted "}),
        ("PASS", 0), ("ESCALATE", 3, "odoo.accounting-post-cancel")),
    "empty domain is bulk": (
        odoo_step(model="res.partner", domain=[], values={"active": False}),
        ("PASS", 0), ("ESCALATE", 3, "odoo.domain-matches-all")),
    "true leaf is bulk": (
        odoo_step(model="res.partner", domain=[[1, "=", 1]], values={"lang": "fr_FR"}),
        ("PASS", 0), ("ESCALATE", 3, "odoo.domain-matches-all")),
    "tautology is bulk": (
        odoo_step(model="crm.lead", domain=["|", ["active", "=", True], ["active", "!=", True]],
                  values={"user_id": 1}),
        ("PASS", 0), ("ESCALATE", 3, "odoo.domain-matches-all")),
    "domain as text is read": (
        odoo_step(model="res.partner", domain="[(1, '=', 1)]", values={"lang": "fr_FR"}),
        ("PASS", 0), ("ESCALATE", 3, "odoo.domain-matches-all")),
    "dynamic domain cannot be bounded": (
        odoo_step(model="res.partner", domain="[('user_id', '=', uid)]", values={"lang": "fr_FR"}),
        ("PASS", 0), ("ESCALATE", 3, "odoo.domain-undecidable")),
    "search write without a domain": (
        odoo_step(model="res.partner", method="write", values={"lang": "fr_FR"}),
        ("PASS", 0), ("ESCALATE", 3, "odoo.missing-domain")),
    "invalid domain": (
        odoo_step(model="res.partner", domain=[["name", "contains", "x"]], values={"lang": "fr_FR"}),
        ("PASS", 0), ("REJECT", 0, "odoo.invalid-domain")),
    "uninstalling account": (
        make_step("odoo.uninstall_module", resource="odoo://erp.example.com/modules/account"),
        ("ESCALATE", 3), ("REJECT", 3, "odoo.core-module-uninstall")),
    "uninstalling web named in params": (
        make_step("odoo.uninstall_module", resource="erp", params={"modules": ["crm", "Web"]}),
        ("ESCALATE", 3), ("REJECT", 3, "odoo.core-module-uninstall")),
    "odoo 18 is a known provider": (
        make_step("odoo.update_record", "odoo.v18", params={"model": "res.partner", "ids": [1]}),
        ("REJECT", 0), ("PASS", 0, None)),
    "wiping every invoice": (
        odoo_step("odoo.delete_record", model="account.move", domain=[]),
        ("ESCALATE", 3), ("REJECT", 3, "odoo.wipe-critical-model")),
}

UNCHANGED = {
    "a partner by id": (odoo_step(model="res.partner", ids=[42], values={"phone": "+33"}), "PASS", 0),
    "a bounded domain": (odoo_step(model="res.partner", domain=[["id", "in", [1, 2]]], values={"x": 1}),
                         "PASS", 0),
    "creating a partner": (odoo_step("odoo.create_record", model="res.partner", values={"name": "A"}), "PASS", 0),
    "a draft invoice": (odoo_step("odoo.create_record", model="res.partner", values={"state": "posted"}),
                        "PASS", 0),
    "a non-accounting cancel": (odoo_step(model="sale.order.line", ids=[1], method="button_cancel"), "PASS", 0),
    "uninstalling crm": (make_step("odoo.uninstall_module", resource="odoo://erp/modules/crm",
                                   params={"module": "crm"}), "ESCALATE", 3),
    "a non-odoo step": (make_step("course.create", params={"domain": []}), "PASS", 0),
}


@pytest.mark.parametrize("case", CHANGED, ids=list(CHANGED))
def test_the_plugin_changes_the_decision(engines: tuple[PolicyEngine, PolicyEngine], case: str) -> None:
    step, (base_status, base_tier), (status, tier, rule) = CHANGED[case]
    baseline, with_odoo = engines
    ir = make_ir(step)
    before = baseline.evaluate(ir)
    assert_decision(before, status=base_status, tier=base_tier)
    assert not any(r.startswith("odoo.") for r in _fired(before))
    after = with_odoo.evaluate(ir)
    assert_decision(after, status=status, tier=tier, hits=[rule] if rule else [])


@pytest.mark.parametrize("case", UNCHANGED, ids=list(UNCHANGED))
def test_the_plugin_leaves_other_steps_alone(engines: tuple[PolicyEngine, PolicyEngine], case: str) -> None:
    step, status, tier = UNCHANGED[case]
    baseline, with_odoo = engines
    ir = make_ir(step)
    before, after = baseline.evaluate(ir), with_odoo.evaluate(ir)
    assert_decision(before, status=status, tier=tier)
    assert_decision(after, status=status, tier=tier, codes=before.violation_codes())
    assert not any(r.startswith("odoo.") for r in _fired(after))


def _fired(decision: Any) -> set[str]:
    return fired_rules(decision)


def test_same_decision_with_a_second_explanation(engines: tuple[PolicyEngine, PolicyEngine]) -> None:
    """Both packs call `account.move` critical: the tier is the same, the decision lists both."""
    baseline, with_odoo = engines
    ir = make_ir(odoo_step("odoo.delete_record", model="account.move", ids=[1, 2]))
    before, after = baseline.evaluate(ir), with_odoo.evaluate(ir)
    assert_decision(before, status="ESCALATE", tier=3, hits=["critical-odoo-model"], no_hits=["odoo.critical-model"])
    assert_decision(after, status="ESCALATE", tier=3, hits=["critical-odoo-model", "odoo.critical-model"],
                    no_hits=["odoo.wipe-critical-model", "odoo.domain-matches-all"])


def test_hits_name_their_pack_and_check(engines: tuple[PolicyEngine, PolicyEngine]) -> None:
    _, with_odoo = engines
    decision = with_odoo.evaluate(make_ir(
        odoo_step(model="res.partner", ids=[1], values={"a": 1}),
        odoo_step(model="res.users", domain=[], values={"active": False}),
        odoo_step(model="res.partner", domain=[["x", "nope", 1]]),
    ))
    assert_no_hit(decision, "odoo.critical-model", step=0)
    assert_hit(decision, "odoo.critical-model", step=1, tier=3, pack="odoo")
    assert_hit(decision, "odoo.domain-matches-all", step=1, tier=3, pack="plugin:odoo-bulk-domain")
    assert_hit(decision, "odoo.invalid-domain", step=2, code="ODOO_INVALID_DOMAIN", pack="plugin:odoo-bulk-domain")
    [violation] = decision.violations
    assert violation.step_index == 2
    assert violation.message == "`params.domain`: invalid odoo domain: term 0: `nope` is not an odoo operator"
    assert {p["name"] for p in decision.packs} == {"baseline", "odoo"}


def test_escalation_event_carries_the_odoo_reason(engines: tuple[PolicyEngine, PolicyEngine],
                                                  irgov_events: EventCapture) -> None:
    _, with_odoo = engines
    decision = with_odoo.evaluate(make_ir(make_step("course.create"),
                                          odoo_step(model="ir.model.access", ids=[5], values={"perm_read": True})),
                                  bus=irgov_events.bus)
    assert_decision(decision, status="ESCALATE", tier=3, requires_approval=True)
    assert irgov_events.types() == ["ir.validated_escalate"]
    [payload] = irgov_events.payloads("ir.validated_escalate")
    [high] = payload["high_risk_steps"]
    assert high["step_index"] == 1 and high["risk_tier"] == 3
    assert "critical odoo model" in high["reason"]
    assert payload["ir_hash"] == decision.ir_hash


def test_reject_event_lists_the_odoo_violation(engines: tuple[PolicyEngine, PolicyEngine],
                                               irgov_events: EventCapture) -> None:
    _, with_odoo = engines
    with_odoo.evaluate(make_ir(make_step("odoo.uninstall_module", resource="base")), bus=irgov_events.bus)
    [payload] = irgov_events.payloads("ir.validated_reject")
    assert [(v["code"], v["rule"], v["step_index"]) for v in payload["violations"]] == [
        ("ODOO_CORE_MODULE_UNINSTALL", "odoo.core-module-uninstall", 0)]


def test_the_pack_stands_alone(irgov_engine_factory: EngineFactory, engine_name: str) -> None:
    alone = irgov_engine_factory(plugins=[odoo_plugin], baseline=False, engine=engine_name)
    assert [p.name for p in alone.packs] == ["odoo"]
    assert_decision(alone.evaluate(make_ir(odoo_step(model="account.move", ids=[1], values={"ref": "x"}))),
                    status="ESCALATE", tier=3, hits=["odoo.critical-model"])


def test_a_non_string_model_fails_closed(engines: tuple[PolicyEngine, PolicyEngine]) -> None:
    _, with_odoo = engines
    decision = with_odoo.evaluate(make_ir(odoo_step(model=["res.users"], ids=[1])))
    assert decision.status == "REJECT"
    assert "RULE_ERROR" in decision.violation_codes()


def test_rule_ids_do_not_collide_with_the_baseline() -> None:
    baseline, odoo = load_pack(baseline_pack_path()), load_pack(odoo_pack_path())
    ids = {spec.id for spec in (*odoo.tiers, *odoo.rules)}
    assert ids and all(i.startswith("odoo.") for i in ids)
    assert not ids & {spec.id for spec in (*baseline.tiers, *baseline.rules)}
    assert not set(odoo.constants) - {n for n in odoo.constants if n.startswith("odoo_")}


POLICY_TESTS = Path(__file__).resolve().parents[1] / "policies"


def test_the_pack_policy_tests_pass_on_every_engine() -> None:
    """The ways of naming a critical model (`res_model`, `Model`, the resource) are caught, and
    the benign cases keep passing, on every installed engine."""
    run = assert_policy_tests_pass([POLICY_TESTS], [odoo_plugin], engines=available_engines())
    assert {r.engine for r in run.results} == set(available_engines())
