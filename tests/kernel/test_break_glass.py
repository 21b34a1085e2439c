"""Bug 5: a token minted outside the workflow is on record, and refused input writes nothing."""

from __future__ import annotations

import pytest

from irgov_policy.errors import IrgovError
from irgov_policy.events import MemorySink
from irgov_policy.kernel import Governance

from .flows import ESCALATE_IR, dag_for


def test_break_glass_is_recorded_and_opens_the_gate_once(gov: Governance, sink: MemorySink) -> None:
    ir_hash = gov.engine.evaluate(ESCALATE_IR).ir_hash  # decided, but not recorded in the ledger
    for bad in ({"ir_hash": "sha256:abc"}, {"ttl_seconds": 0}, {"reason": ""}, {"by": "a\x00b"}):
        args = {"tenant_id": "t1", "ir_hash": ir_hash, "by": "oncall", "reason": "INC-1", **bad}
        with pytest.raises(IrgovError):
            gov.break_glass(args["tenant_id"], args["ir_hash"], args["by"], args["reason"],
                            ttl_seconds=args.get("ttl_seconds"))
    gov.flush()
    assert gov.list_requests("t1") == ([], None)  # nothing written by a refused call
    assert sink.types() == []

    grant = gov.break_glass("t1", ir_hash, "oncall", "INC-1")
    [view], _ = gov.list_requests("t1")
    request = view.request
    assert (request.requested_by, request.granted_by, request.reason) == ("oncall", "oncall", "break-glass: INC-1")
    assert request.risk_tier == 3 and view.status == "pending"  # no decision on record: the highest tier
    assert view.approval is not None and view.approval.created_by == "oncall"
    gov.flush()
    assert sink.types() == ["ir.approval_created"]

    assert gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), str(grant.token)).allowed
    assert not gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), str(grant.token)).allowed
    assert gov.get_request(request.request_id, "t1").status == "consumed"
