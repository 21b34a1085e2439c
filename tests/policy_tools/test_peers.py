"""The peers of `benchmarks/bench_peers.py` decide as the reference does before they are timed,
and the reference's subset mode applies exactly the rules it names: our engine on the baseline
pack without its `rules` section (the rules Cedar can express) agrees with the reference on those
rules, and the Cedar port agrees with both. A peer that is not installed is skipped."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from irgov_policy.policy import PolicyEngine

from .conftest import load_bench_peers, load_reference
from .test_differential import irs

reference = load_reference()
peers = load_bench_peers()
SUBSET = peers.CEDAR_RULES
_SUBSET_ENGINE: list[PolicyEngine] = []
CEDAR = peers.cedar_peer()  # the port, or why it is not installed


def subset_engine() -> PolicyEngine:
    if not _SUBSET_ENGINE:
        with tempfile.TemporaryDirectory() as directory:
            _SUBSET_ENGINE.append(PolicyEngine.from_paths([peers.subset_pack(Path(directory), SUBSET)], "auto",
                                                          use_plugins=False, budget_ms=120_000))
    return _SUBSET_ENGINE[0]


def test_the_subset_names_rules_of_the_reference() -> None:
    assert SUBSET.issubset(reference.RULES) and len(SUBSET) < len(reference.RULES)
    assert len(reference.RULES) == len(set(reference.RULES)) == 17


def test_the_subset_leaves_out_the_other_rules() -> None:
    base = {"action": "course.create", "provider": "course_factory.v1", "resource": "r", "idempotency_key": "k"}
    for step, full in (({**base, "resource": "site:prod"}, "ESCALATE"), ({**base, "params": {"bulk": 1}}, "ESCALATE"),
                       ({**base, "idempotency_key": " "}, "REJECT"), ({**base, "budget_cents": -1}, "REJECT")):
        ir = {"tenant_id": "t", "steps": [step]}
        assert reference.decide(ir).status == full
        assert reference.decide(ir, SUBSET).status == "PASS"
    wrong = {"tenant_id": "t", "steps": [{**base, "action": "x.y", "provider": "dns.hetzner"}]}
    assert reference.decide(wrong, SUBSET).violation_codes == ["UNKNOWN_ACTION"]
    mismatch = {"tenant_id": "t", "steps": [{**base, "provider": "dns.hetzner"}]}
    assert reference.decide(mismatch, SUBSET).violation_codes == ["PROVIDER_MISMATCH"]


def decided(decision: Any) -> tuple[Any, ...]:
    return decision.status, decision.risk_tier, [s.tier for s in decision.steps], decision.violation_codes()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=irs)
def test_the_engine_on_the_subset_pack_matches_the_reference_subset(raw: dict[str, Any]) -> None:
    expected = reference.decide(raw, SUBSET)
    decision = subset_engine().evaluate(raw)
    if expected.violation_codes == ["INVALID_IR"]:
        assert decision.status == "REJECT" and set(decision.violation_codes()) == {"INVALID_IR"}
        return
    want = (expected.status, expected.risk_tier, expected.step_tiers, expected.violation_codes)
    assert decided(decision) == want, raw
    assert reference.decide(raw) == reference.decide(raw, frozenset(reference.RULES))


@pytest.mark.parametrize("name", ["opa", "regorus", "cedar"])
def test_each_installed_peer_agrees_on_the_corpus(name: str) -> None:
    built = getattr(peers, f"{name}_peer")()
    if isinstance(built, str):
        pytest.skip(f"{name}: {built}")
    rules = SUBSET if name == "cedar" else None
    assert peers.disagreement(built, reference, rules) is None


@pytest.mark.skipif(isinstance(CEDAR, str), reason=f"cedar: {CEDAR}")
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=irs)
def test_the_cedar_port_matches_the_reference_subset(raw: dict[str, Any]) -> None:
    expected = reference.decide(raw, SUBSET)
    if expected.violation_codes == ["INVALID_IR"]:
        return  # Cedar is not asked about structure: the reference's structure check is no rule of the subset
    data = json.dumps(raw).encode("utf-8")
    got = CEDAR(data)
    assert got == peers.expected(reference, data, SUBSET), raw
