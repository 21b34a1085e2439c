"""The gate parses an IR once and hashes it once: the decision and the diff audit judge the same
object, and the audit reuses the decision's hash."""

from __future__ import annotations

import importlib
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from irgov_policy.kernel import Governance
from irgov_policy.policy import evaluator

from .flows import ESCALATE_IR, PASS_IR, dag_for

# The module, not the `audit` function the curated package exports under the same name.
audit_module = importlib.import_module("irgov_policy.audit")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts calls of the real parsers and of the IR hash, in every module that calls them."""
    counter: Counter[str] = Counter()

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counter[name] += 1
            return real(*args, **kwargs)
        return wrapper

    for module in (evaluator, audit_module):
        for name in ("load_ir", "parse_ir", "ir_hash"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, counting(name, getattr(module, name)))
    return counter


@pytest.mark.parametrize("source", [PASS_IR, json.dumps(PASS_IR), json.dumps(PASS_IR).encode()],
                         ids=["mapping", "str", "bytes"])
def test_authorize_execution_parses_and_hashes_once(gov: Governance, calls: Counter[str], source: Any) -> None:
    clearance = gov.authorize_execution(source, dag_for(PASS_IR))
    assert clearance.allowed, clearance.reasons
    assert calls["load_ir"] + calls["parse_ir"] == 1
    assert calls["ir_hash"] == 1
    assert clearance.audit is not None and clearance.audit.ir_hash == clearance.ir_hash


def test_the_escalate_gate_also_parses_once(gov: Governance, calls: Counter[str]) -> None:
    decision = gov.validate(ESCALATE_IR, submitted_by="alice")
    request = gov.request_approval(decision, "alice")
    token = str(gov.grant(request.request.request_id, "bob", "t1").token)
    calls.clear()
    clearance = gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token)
    assert clearance.allowed, clearance.reasons
    assert (calls["load_ir"] + calls["parse_ir"], calls["ir_hash"]) == (1, 1)


def test_an_ir_that_does_not_parse_is_still_refused_with_both_reasons(gov: Governance) -> None:
    clearance = gov.authorize_execution({"tenant_id": "t1"}, [])
    assert not clearance.allowed
    assert clearance.reasons[0].startswith("the ir is rejected: INVALID_IR")
    assert clearance.reasons[1].startswith("the dag cannot be audited: the ir is not valid: ")


def test_audit_alone_hashes_the_ir_itself(gov: Governance, calls: Counter[str]) -> None:
    result = gov.audit(PASS_IR, dag_for(PASS_IR))
    assert result.success
    assert calls["ir_hash"] == 1 and result.ir_hash == gov.validate(PASS_IR).ir_hash
