"""The baseline pack reproduces the reference rules and proves each of their defects gone."""

from __future__ import annotations

import json
from typing import Any

import pytest

from irgov_policy.policy import Decision, PolicyEngine

from .conftest import make_ir


def step_rules(decision: Decision, index: int = 0) -> set[str]:
    return {h.rule for h in decision.steps[index].hits if h.mode == "enforce"}


def decide(engine: PolicyEngine, **step: Any) -> Decision:
    return engine.evaluate(make_ir(step))


# -- vocabulary and tiers ---------------------------------------------------------------------

TIERS = {
    "dns.delete_zone": 3, "odoo.uninstall_module": 3, "odoo.delete_record": 3, "infra.destroy": 3,
    "dns.update_records": 2, "dns.create_zone": 2, "odoo.install_module": 2,
    "deploy.website": 1, "deploy.api": 1, "deploy.database": 1, "webgen.generate_site": 1,
    "webgen.update_content": 1, "webgenesis.site.create": 1, "webgenesis.site.update": 1,
    "webgenesis.deploy.trigger": 1, "webgenesis.bind_theme": 1, "webgenesis.build_sections": 1,
    "webgenesis.apply_seo": 1, "webgenesis.preview": 1, "course.deploy_staging": 1,
    "course.create": 0, "course.generate_outline": 0, "course.generate_lessons": 0, "course.generate_quiz": 0,
    "course.generate_landing": 0, "course.enhance_examples": 0, "course.enhance_summaries": 0,
    "course.generate_flashcards": 0, "course.workflow_transition": 0, "odoo.update_module": 0,
    "odoo.create_record": 0, "odoo.update_record": 0, "infra.provision": 0, "infra.scale": 0,
}
PROVIDER_OF = {"deploy": "deploy.docker", "dns": "dns.route53", "odoo": "odoo.v17", "webgen": "webgen.v1",
               "webgenesis": "webgenesis.v1", "course": "course_factory.v1", "infra": "infra.terraform"}


def test_tier_table_covers_the_34_actions() -> None:
    assert len(TIERS) == 34


@pytest.mark.parametrize("action,tier", sorted(TIERS.items()))
def test_action_tiers_match_the_reference_table(engine: PolicyEngine, action: str, tier: int) -> None:
    d = decide(engine, action=action, provider=PROVIDER_OF[action.split(".")[0]])
    assert d.steps[0].tier == tier
    assert d.violations == ()
    assert d.status == ("ESCALATE" if tier >= 2 else "PASS")
    assert d.requires_approval is (tier >= 2)


def test_unknown_action_provider_and_mismatch_reject(engine: PolicyEngine) -> None:
    d = engine.evaluate(make_ir({"action": "custom.delete"}, {"provider": "dns.hetzner2"},
                                {"action": "dns.update_records", "provider": "odoo.v17"},
                                {"action": "course.create", "provider": "course_factory.v1"}))
    assert [(v.step_index, v.code) for v in d.violations] == [
        (0, "UNKNOWN_ACTION"), (1, "UNKNOWN_PROVIDER"), (2, "PROVIDER_MISMATCH")]
    assert d.status == "REJECT" and d.requires_approval is False
    assert all(v.severity == "ERROR" for v in d.violations)


# -- production scope: whole tokens only (defect 1) --------------------------------------------

NOT_PRODUCTION = ["product-catalog", "reproduce", "delivery", "olive-oil", "alive-check", "preproduction",
                  "productive", "livestock", "LIVESTOCK", "OLIVE-OIL", "PRODUCTIVE"]
# Upper case too: a TR39 skeleton depends on case (`I` is `l`, `m` is `rn`), and `LIVE` or
# `PRODUCTION` once passed as tier 0.
PRODUCTION = [" PROD", "PROD-EU", "site:prod", "db-production-eu", "prod", "Live", "pro\u200bd", "ＰＲＯＤ",
              "LIVE", "PRODUCTION", "DB-PRODUCTION-EU", "ＬＩＶＥ", "\u0420R\u041eD", "\u0440r\u043ed"]


@pytest.mark.parametrize("text", NOT_PRODUCTION)
def test_substrings_of_markers_are_not_production(engine: PolicyEngine, text: str) -> None:
    for step in ({"resource": text}, {"params": {"target": text}}, {"params": {text: 1}},
                 {"constraints": {"environment": text}}, {"constraints": {"env": text}}):
        d = decide(engine, **step)
        assert d.risk_tier == 0 and d.status == "PASS", (step, d.to_dict())


@pytest.mark.parametrize("text", PRODUCTION)
def test_whole_token_markers_are_production(engine: PolicyEngine, text: str) -> None:
    cases = {
        "production-resource": {"resource": f"db/{text}"},
        "production-params": {"params": {"deep": [{"target": text}]}},
        "production-environment": {"constraints": {"environment": text}},
    }
    for rule, step in cases.items():
        d = decide(engine, **step)
        assert d.status == "ESCALATE" and d.risk_tier == 2, (step, d.to_dict())
        assert rule in step_rules(d)
        assert d.high_risk_steps[0].reason == {
            "production-resource": "targets production (resource)",
            "production-params": "targets production (params)",
            "production-environment": "targets production (environment)"}[rule]


def test_params_keys_count_as_production(engine: PolicyEngine) -> None:
    assert "production-params" in step_rules(decide(engine, params={"nested": {"prod_db": "x"}}))


def test_env_is_read_even_when_a_harmless_environment_is_present(engine: PolicyEngine) -> None:
    d = decide(engine, constraints={"environment": "staging", "env": "prod"})
    assert d.status == "ESCALATE" and "production-environment" in step_rules(d)
    d = decide(engine, constraints={"env": "prod-eu"})
    assert d.status == "ESCALATE"


def test_non_string_environment_values_are_read_as_text(engine: PolicyEngine) -> None:
    assert decide(engine, constraints={"environment": ["staging", "prod"]}).status == "ESCALATE"
    assert decide(engine, constraints={"environment": 3}).status == "PASS"


# -- impact: critical models and bulk ----------------------------------------------------------

@pytest.mark.parametrize("model", ["account.move", " Account.Move ", "SALE.ORDER", "purchase.order\t",
                                   "account.pay\u200bment"])
def test_critical_odoo_models_trimmed_case_insensitive(engine: PolicyEngine, model: str) -> None:
    d = decide(engine, action="odoo.update_record", provider="odoo.v16", params={"model": model})
    assert d.risk_tier == 3 and "critical-odoo-model" in step_rules(d)


def test_critical_model_only_for_record_actions(engine: PolicyEngine) -> None:
    d = decide(engine, action="odoo.update_module", provider="odoo.v16", params={"model": "account.move"})
    assert d.risk_tier == 0
    d = decide(engine, action="odoo.create_record", provider="odoo.v16", params={"model": "res.partner"})
    assert d.risk_tier == 0


def test_non_string_model_on_a_record_action_fails_closed(engine: PolicyEngine) -> None:
    d = decide(engine, action="odoo.create_record", provider="odoo.v16", params={"model": ["account.move"]})
    assert d.status == "REJECT"
    [violation] = d.violations
    assert violation.code == "RULE_ERROR" and violation.rule == "critical-odoo-model"
    assert violation.pack == "baseline" and "rule `critical-odoo-model` in pack `baseline`" in violation.message


@pytest.mark.parametrize("params", [{"bulk": True}, {"batch_size": 50}, {"mode": "BATCH"},
                                    {"opts": [{"kind": "bulk-import"}]}])
def test_bulk_whole_tokens(engine: PolicyEngine, params: dict[str, Any]) -> None:
    d = decide(engine, params=params)
    assert d.risk_tier == 3 and "bulk-operation" in step_rules(d)


@pytest.mark.parametrize("params", [{"bulky": True}, {"mode": "ebatch"}, {"n": "batches"}, {"x": 1}])
def test_bulk_substrings_do_not_count(engine: PolicyEngine, params: dict[str, Any]) -> None:
    assert decide(engine, params=params).risk_tier == 0


# -- step hygiene ------------------------------------------------------------------------------

@pytest.mark.parametrize("key", [None, "", "   ", "\u200b"])
def test_missing_or_blank_idempotency_key(engine: PolicyEngine, key: str | None) -> None:
    step: dict[str, Any] = {"idempotency_key": key}
    ir = make_ir(step)
    if key is None:
        del ir["steps"][0]["idempotency_key"]
    d = engine.evaluate(ir)
    assert d.status == "REJECT" and d.violation_codes() == ["MISSING_IDEMPOTENCY_KEY"]


@pytest.mark.parametrize("budget,codes", [
    (250, []), (0, []), (5.0, []), (None, []),
    (2.5, ["INVALID_BUDGET"]), ("100", ["INVALID_BUDGET"]), (True, ["INVALID_BUDGET"]),
    (False, ["INVALID_BUDGET"]), ([1], ["INVALID_BUDGET"]), ({"c": 1}, ["INVALID_BUDGET"]),
    (-5, ["NEGATIVE_BUDGET"]), (-1.0, ["NEGATIVE_BUDGET"]),
])
def test_budgets(engine: PolicyEngine, budget: Any, codes: list[str]) -> None:
    d = engine.evaluate(make_ir({"budget_cents": budget}))
    assert d.violation_codes() == codes
    assert d.status == ("REJECT" if codes else "PASS")


# -- fail-open gone, input decided not raised (defects 2 and 4) --------------------------------

def test_floats_and_control_characters_in_params_are_decided(engine: PolicyEngine) -> None:
    d = decide(engine, params={"ratio": 0.1, "text": "line\u0000\u0007\nbreak", "big": 1e300})
    assert d.status == "PASS" and d.ir_hash.startswith("sha256:")


@pytest.mark.parametrize("raw,pointer", [
    ({"tenant_id": "t", "steps": []}, "/steps"),
    ({"tenant_id": "t", "steps": [{"action": "a", "provider": "p"}]}, "/steps/0"),
    ({"tenant_id": "t", "steps": [{"action": "a", "provider": "p", "resource": "r\u0001"}]}, "/steps/0/resource"),
    ({"tenant_id": "t", "steps": [{"action": "a", "provider": "p", "resource": "r", "extra": 1}]}, "/steps/0"),
    ({"tenant_id": "t", "steps": [], "params": {}}, ""),
])
def test_invalid_ir_is_a_reject_with_pointer(engine: PolicyEngine, raw: dict[str, Any], pointer: str) -> None:
    d = engine.evaluate(raw)
    assert d.status == "REJECT"
    assert "INVALID_IR" in d.violation_codes()
    assert any(v.message.startswith((pointer or "/") + ":") for v in d.violations), d.to_dict()["violations"]
    assert d.ir_hash.startswith("sha256:") and d.tenant_id == "t"


@pytest.mark.parametrize("data", [b"", b"{", b"[1]", b'{"tenant_id": "t", "tenant_id": "u", "steps": []}',
                                  b'{"tenant_id": NaN}', b"\xff\xfe", "{}", b"[" * 10000])
def test_malformed_json_never_raises(engine: PolicyEngine, data: bytes | str) -> None:
    d = engine.evaluate(data)
    assert d.status == "REJECT" and d.violation_codes()[0] == "INVALID_IR"
    assert d.ir_hash.startswith("sha256:")


def test_computed_fields_from_clients_are_ignored(engine: PolicyEngine) -> None:
    ir = make_ir({"action": "infra.destroy", "provider": "infra.ansible"})
    plain = engine.evaluate(ir)
    ir["steps"][0]["risk_tier"] = 0
    ir["steps"][0]["requires_approval"] = False
    forged = engine.evaluate(json.dumps(ir))
    assert forged.risk_tier == 3 and forged.ir_hash == plain.ir_hash


def test_same_ir_hashes_the_same_after_evaluation(engine: PolicyEngine) -> None:
    ir = make_ir({"action": "dns.update_records", "provider": "dns.route53"})
    assert engine.evaluate(ir).ir_hash == engine.evaluate(json.dumps(ir).encode()).ir_hash
