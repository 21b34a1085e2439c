"""The events of the approval-request workflow beyond the contract's nine: a request made
(`ir.approval_requested`) and a request denied or withdrawn (`ir.approval_request_revoked`).

They say that something waits for a human, or that a human said no, so that a notifier (or any
sink) can tell the approvers and the requester. Like every event they carry no token and no
digest of one; the intent summary is shortened as in lists.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..approvals.ledger_records import ApprovalRequest, DecisionEntry
from ..events import Event, ExtensionEventType, new_event
from ..events.envelope import format_payload_timestamp
from .request_details import summary_of

__all__ = ["requested_event", "revoked_event"]


def _at(us: int | None) -> str:
    moment = datetime.now(UTC) if us is None else datetime.fromtimestamp(us / 1_000_000, UTC)
    return format_payload_timestamp(moment)


def requested_event(request: ApprovalRequest, decision: DecisionEntry | None) -> Event:
    payload: dict[str, Any] = {
        "approval_request_id": request.request_id, "tenant_id": request.tenant_id, "ir_hash": request.ir_hash,
        "risk_tier": request.risk_tier, "requested_by": request.requested_by, "reason": request.reason,
        "requested_at": _at(request.created_us),
        # as in the contract's events: the IR's own request id
        "request_id": request.correlation_id if decision is None else decision.request_id,
        "intent_summary": None if decision is None else summary_of(decision.intent_summary),
        "step_count": None if decision is None else decision.step_count,
    }
    return new_event(ExtensionEventType.APPROVAL_REQUESTED, payload, tenant_id=request.tenant_id,
                     correlation_id=request.correlation_id)


def revoked_event(request: ApprovalRequest) -> Event:
    payload: dict[str, Any] = {
        "approval_request_id": request.request_id, "tenant_id": request.tenant_id, "ir_hash": request.ir_hash,
        "request_id": request.correlation_id, "risk_tier": request.risk_tier, "revoked_by": request.revoked_by, "reason": request.revoke_reason,
        "revoked_at": _at(request.revoked_us), "approval_id": request.approval_id,
    }
    return new_event(ExtensionEventType.APPROVAL_REQUEST_REVOKED, payload, tenant_id=request.tenant_id,
                     correlation_id=request.correlation_id)
