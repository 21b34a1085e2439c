"""The decision budget is counted in rule evaluations, so a decision does not depend on load, and
a budget REJECT never replaces a completed decision the ledger holds for the same IR."""

from __future__ import annotations

from typing import Any

from irgov_policy.kernel import Governance
from irgov_policy.policy import PolicyEngine, baseline_pack_path


def _steps(count: int) -> dict[str, Any]:
    return {"tenant_id": "t1", "request_id": "big", "steps": [
        {"action": "dns.update_records" if i == 0 else "course.create", "provider": "dns.cloudflare" if i == 0
         else "course_factory.v1", "resource": f"r/{i}", "idempotency_key": f"k{i}"} for i in range(count)]}


def _engine(**options: Any) -> PolicyEngine:
    return PolicyEngine.from_paths([baseline_pack_path()], use_plugins=False, **options)


def test_the_budget_counts_work_not_time() -> None:
    big = _steps(1200)
    # A generous clock and a tight one decide alike: time is only a backstop.
    slow, fast = _engine(budget_ms=600_000), _engine(budget_ms=60_000)
    assert slow.evaluate(big).status == fast.evaluate(big).status == "ESCALATE"
    per_step = len(slow.policy.step_plan("course.create", "course_factory.v1").rules) + 1
    tight = _engine(budget_ms=600_000, max_rule_evaluations=100 * per_step)
    first, again = tight.evaluate(big), tight.evaluate(big)
    assert first.status == "REJECT" and first.violation_codes() == ["BUDGET_EXCEEDED"]
    [violation] = first.violations
    assert violation.step_index == again.violations[0].step_index
    assert violation.step_index is not None and 99 <= violation.step_index <= 100
    assert "budget of" in violation.message and "rule evaluations" in violation.message


def test_a_budget_reject_does_not_replace_a_completed_decision(gov: Governance) -> None:
    big = _steps(300)
    decided = gov.validate(big, submitted_by="alice")
    assert decided.status == "ESCALATE"
    starved = Governance(gov.config, engine=_engine(max_rule_evaluations=50), approvals=gov.approvals,
                         ledger=gov.ledger, bus=gov.bus)
    rejected = starved.validate(big, submitted_by="alice")
    assert rejected.status == "REJECT" and rejected.ir_hash == decided.ir_hash
    kept = gov.ledger.get_decision("t1", decided.ir_hash)
    assert kept is not None and kept.status == "ESCALATE"
    # A budget REJECT of an IR never decided before is recorded like any decision.
    other = starved.validate({**big, "request_id": "other"})
    recorded = gov.ledger.get_decision("t1", other.ir_hash)
    assert recorded is not None and recorded.status == "REJECT"
