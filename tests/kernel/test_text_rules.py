"""One set of text rules for the kernel, the approval service and the HTTP layer.

A request the kernel accepts must be one the approval service later accepts too: otherwise a
request is taken that can never be granted and stays `requested` for ever."""

from __future__ import annotations

import pytest

from irgov_policy.errors import ApprovalError
from irgov_policy.kernel import Governance
from irgov_policy.text_rules import (
    MAX_PRINCIPAL_LENGTH,
    MAX_REASON_LENGTH,
    REQUEST_ID,
    REQUEST_ID_PATTERN,
    check_text,
    new_request_id,
)

from .flows import ESCALATE_IR

TOKEN_SHAPED = "irgap_" + "A" * 49

REASONS = [
    "dns change",
    "x" * MAX_REASON_LENGTH,
    "x" * (MAX_REASON_LENGTH + 1),
    "",
    "line\nbreak",
    "tab\there",
    "del\x7f",
    f"paste {TOKEN_SHAPED} here",
    "irgap_",
    "naïve 改变 ✓",
    "\u202eright-to-left",
]


@pytest.mark.parametrize("reason", REASONS)
def test_a_request_the_kernel_accepts_can_be_granted(gov: Governance, reason: str) -> None:
    decision = gov.validate(ESCALATE_IR, submitted_by="alice")
    try:
        request = gov.request_approval(decision, "alice", reason=reason)
    except ApprovalError:
        assert gov.list_requests("t1")[0] == []  # refused at once: nothing left waiting
        return
    grant = gov.grant(request.request.request_id, "bob", "t1")
    assert grant.request.status == "pending"


def test_a_token_shaped_reason_is_refused_when_requested_not_when_granted(gov: Governance) -> None:
    decision = gov.validate(ESCALATE_IR, submitted_by="alice")
    with pytest.raises(ApprovalError) as refused:
        gov.request_approval(decision, "alice", reason=f"see {TOKEN_SHAPED}")
    assert str(refused.value) == "`reason` holds an approval token"
    assert TOKEN_SHAPED not in str(refused.value)
    assert gov.list_requests("t1", status="requested")[0] == []


@pytest.mark.parametrize("field", ["approver", "reason"])
def test_a_token_shaped_grant_argument_is_refused_before_anything_changes(gov: Governance, field: str) -> None:
    decision = gov.validate(ESCALATE_IR, submitted_by="alice")
    request_id = gov.request_approval(decision, "alice").request.request_id
    arguments = {"approver": "bob", "reason": None, field: TOKEN_SHAPED}
    with pytest.raises(ApprovalError, match=f"^`{field}` holds an approval token$"):
        gov.grant(request_id, arguments["approver"], "t1", reason=arguments["reason"])
    assert gov.get_request(request_id, "t1").status == "requested"
    assert gov.grant(request_id, "bob", "t1").request.status == "pending"


def test_an_ir_hash_holding_a_token_is_not_echoed(gov: Governance) -> None:
    with pytest.raises(ApprovalError) as refused:
        gov.request_approval(TOKEN_SHAPED, "alice", tenant_id="t1")
    assert TOKEN_SHAPED not in str(refused.value)


@pytest.mark.parametrize(("value", "message"), [
    (None, "`by` must be a string, not `NoneType`"),
    (7, "`by` must be a string, not `int`"),
    ("", f"`by` must have 1 to {MAX_PRINCIPAL_LENGTH} characters"),
    ("a" * (MAX_PRINCIPAL_LENGTH + 1), f"`by` must have 1 to {MAX_PRINCIPAL_LENGTH} characters"),
    ("a\x00b", "`by` must not contain control characters"),
    ("irgap_x", "`by` holds an approval token"),
])
def test_check_text_refusals(value: object, message: str) -> None:
    with pytest.raises(ApprovalError) as refused:
        check_text("by", value, max_length=MAX_PRINCIPAL_LENGTH)
    assert str(refused.value) == message


def test_check_text_accepts_and_passes_none_when_optional() -> None:
    assert check_text("by", "ops@example.com", max_length=MAX_PRINCIPAL_LENGTH) == "ops@example.com"
    assert check_text("by", None, max_length=MAX_PRINCIPAL_LENGTH, optional=True) is None


def test_request_ids_match_their_pattern_everywhere() -> None:
    import re

    from irgov_policy.approvals import ledger_records as ledger
    from irgov_policy.http import router

    rid = new_request_id()
    assert REQUEST_ID.fullmatch(rid)
    assert re.match(REQUEST_ID_PATTERN, rid)
    assert not REQUEST_ID.fullmatch(rid.upper())
    assert ledger.REQUEST_ID is REQUEST_ID and router.REQUEST_ID_PATTERN is REQUEST_ID_PATTERN
