"""What the kernel hands back: approval requests as callers see them, grants, clearances.

Views carry no secret a caller did not ask for: a request view never holds a token or a digest,
and a grant's token appears in `to_dict` (its one delivery) but never in its `repr`."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..approvals import Approval, ApprovalStatus, ApprovalToken, ConsumeReason, ConsumeResult
from ..approvals.ledger_records import ApprovalRequest, DecisionEntry, RequestState
from ..audit import DiffAuditResult
from ..events import format_timestamp
from ..events.envelope import parse_timestamp
from ..policy.decision import Decision

__all__ = ["ApprovalRequestView", "Clearance", "Grant", "format_us"]


def format_us(us: int | None) -> str | None:
    """A time in microseconds since the epoch as the API writes times (None stays None)."""
    return None if us is None else format_timestamp(datetime.fromtimestamp(us / 1_000_000, UTC))


@dataclass(frozen=True)
class ApprovalRequestView:
    """An approval request as callers see it: the request, its approval once granted, and the
    decision it asks to approve (without its snapshot). Never a token, never a digest."""

    request: ApprovalRequest
    approval: Approval | None
    decision: DecisionEntry | None = None

    @property
    def status(self) -> str:
        if self.request.state is RequestState.REQUESTED:
            return "requested"
        if self.request.state is RequestState.REVOKED:
            return "revoked"
        if self.approval is None:
            return "granted"  # between the grant and its approval record, or purged since
        return self.approval.status.value

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        return {
            "request_id": r.request_id,
            "tenant_id": r.tenant_id,
            "ir_hash": r.ir_hash,
            "status": self.status,
            "risk_tier": r.risk_tier,
            "requested_by": r.requested_by,
            "requested_at": format_us(r.created_us),
            "reason": r.reason,
            "granted_by": r.granted_by,
            "granted_at": format_us(r.granted_us),
            "revoked_by": r.revoked_by,
            "revoked_at": format_us(r.revoked_us),
            "revoke_reason": r.revoke_reason,
            "token_delivery": r.delivery,
            "claimed_by": r.claimed_by,
            "claimed_at": format_us(r.claimed_us),
            "approval": None if self.approval is None else self.approval.to_dict(),
        }


@dataclass(frozen=True)
class Grant:
    """What a grant or a claim hands over, once: the request, its approval and the token. A
    grant made to be claimed holds no token (`token` None): its requester claims it."""

    request: ApprovalRequestView
    token: ApprovalToken | None

    def __repr__(self) -> str:
        shown = "None" if self.token is None else "<redacted>"
        return f"Grant(request_id={self.request.request.request_id!r}, token={shown})"

    def to_dict(self) -> dict[str, Any]:
        return {**self.request.to_dict(), "token": None if self.token is None else str(self.token)}


@dataclass(frozen=True)
class Clearance:
    """The answer to "may this DAG run now?": `allowed`, and every reason it may not."""

    allowed: bool
    tenant_id: str | None
    ir_hash: str | None
    status: str | None
    reasons: tuple[str, ...]
    decision: Decision | None = None
    approval: ConsumeResult | None = None
    audit: DiffAuditResult | None = None
    approval_required: bool = False
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: the first answer as it was recorded, when this clearance is its replay (an idempotent
    #: retry of the gate): `to_dict` is that answer unchanged; `decision` and `audit` are not
    #: rebuilt from it (they are None), the other fields are read from it
    recorded: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def replay_of(cls, recorded: dict[str, Any]) -> Clearance:
        """The clearance a recorded answer (`to_dict` of the first one) stands for. Raises
        `KeyError`, `TypeError` or `ValueError` for a record not of that shape."""
        approval = recorded["approval"]
        consumed = None if approval is None else ConsumeResult(
            bool(approval["success"]), None if approval["status"] is None else ApprovalStatus(approval["status"]),
            None if approval["reason"] is None else ConsumeReason(approval["reason"]), approval["approval_id"])
        reasons = recorded["reasons"]
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise TypeError("`reasons` is not a list of strings")
        return cls(recorded["allowed"] is True, recorded["tenant_id"], recorded["ir_hash"], recorded["status"],
                   tuple(reasons), None, consumed, None, recorded["approval_required"] is True,
                   parse_timestamp(recorded["checked_at"]), recorded)

    def to_dict(self) -> dict[str, Any]:
        if self.recorded is not None:
            return copy.deepcopy(self.recorded)
        return {
            "allowed": self.allowed,
            "tenant_id": self.tenant_id,
            "ir_hash": self.ir_hash,
            "status": self.status,
            "approval_required": self.approval_required,
            "reasons": list(self.reasons),
            "decision": None if self.decision is None else self.decision.to_dict(),
            "approval": None if self.approval is None else self.approval.to_dict(),
            "audit": None if self.audit is None else self.audit.to_dict(),
            "checked_at": format_timestamp(self.checked_at),
        }
