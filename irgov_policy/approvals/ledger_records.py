"""The kernel's ledger, as records and an interface: which decisions the kernel made, who
submitted each IR, and the approval requests.

An approval may only be requested for an ESCALATE decision the kernel made, so it keeps every
decision by `(tenant_id, ir_hash)`; a caller cannot forge one. A request is a human step: a
submitter asks, an approver grants, and only the grant mints the token.

The ledger lives in the approval store's own database (SQLite tables beside the approvals, Redis
keys under `<prefix>ledger:`, the memory store's dicts), so granting a request, creating its
approval and recording `ir.approval_created` are one transaction of that store
(`ApprovalStore.grant`). Every other state change of a request is one conditional update, so a
request changes state at most once even when two approvers click at the same time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from ..text_rules import REQUEST_ID, new_request_id

__all__ = [
    "APPROVABLE_STATUS",
    "DELIVERIES",
    "REQUEST_FIELDS",
    "REQUEST_ID",
    "ApprovalRequest",
    "DecisionEntry",
    "Ledger",
    "RequestState",
    "check_changes",
    "decode_request_cursor",
    "encode_request_cursor",
    "new_request_id",
]

_CURSOR = re.compile(rf"(\d{{16}}):({REQUEST_ID.pattern})")


class RequestState(StrEnum):
    """A request moves forward only: requested -> granted | revoked, granted -> revoked."""

    REQUESTED = "requested"
    GRANTED = "granted"
    REVOKED = "revoked"

#: the status of the only decisions an approval can be requested for (the policy's ESCALATE)
APPROVABLE_STATUS = "ESCALATE"


@dataclass(frozen=True)
class DecisionEntry:
    """A decision the kernel made. An ESCALATE one also keeps what a human needs to judge it:
    `step_count` and `intent_summary` (read with every entry, for lists) and `snapshot`, the
    bounded JSON text of its steps, rule hits, violations and packs (`kernel.request_details`),
    read only when asked for (`get_decision(..., with_snapshot=True)`)."""

    tenant_id: str
    ir_hash: str
    status: str
    risk_tier: int
    request_id: str | None
    decided_us: int
    step_count: int | None = None
    intent_summary: str | None = None
    snapshot: str | None = None


@dataclass(frozen=True)
class ApprovalRequest:
    request_id: str
    tenant_id: str
    ir_hash: str
    requested_by: str
    risk_tier: int
    created_us: int
    state: RequestState = RequestState.REQUESTED
    reason: str | None = None
    approval_id: str | None = None
    granted_by: str | None = None
    granted_us: int | None = None
    revoked_by: str | None = None
    revoked_us: int | None = None
    revoke_reason: str | None = None
    #: the IR's `request_id` (from the decision), handed to the approval its grant creates
    correlation_id: str | None = None
    #: how the grant's token reached its user: `response` (in the grant's answer) or `claim`
    #: (sealed beside the request until the requester claims it, `approvals.sealing`)
    delivery: str | None = None
    #: the token, sealed, between a `claim` grant and its claim; erased by the claim or a revoke
    sealed_token: str | None = field(default=None, repr=False)
    claimed_by: str | None = None
    claimed_us: int | None = None


REQUEST_FIELDS: tuple[str, ...] = tuple(ApprovalRequest.__dataclass_fields__)
REQUEST_INT_FIELDS = frozenset({"risk_tier", "created_us", "granted_us", "revoked_us", "claimed_us"})
#: how a grant delivers its token
DELIVERIES = ("response", "claim")


def encode_request_cursor(request: ApprovalRequest) -> str:
    """Position after `request` in newest-first order; also the Redis index member."""
    return f"{request.created_us:016d}:{request.request_id}"


def decode_request_cursor(cursor: str) -> tuple[int, str]:
    match = _CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None
    if match is None:
        raise ValueError(f"cursor `{cursor}` is not one returned by a previous page")
    return int(match.group(1)), match.group(2)


def check_changes(changes: Mapping[str, Any]) -> None:
    """Refuse a change of a field a request does not have, or of its identity."""
    bad = sorted((set(changes) - set(REQUEST_FIELDS)) | ({"request_id", "tenant_id"} & set(changes)))
    if bad:
        raise ValueError("cannot change " + ", ".join(f"`{name}`" for name in bad))


class Ledger(Protocol):
    """The ledger of one approval store (`store.ledger`); it closes with its store."""

    def record_decision(self, entry: DecisionEntry, submitted_by: str | None) -> None: ...

    def get_decision(self, tenant_id: str, ir_hash: str, *, with_snapshot: bool = False) -> DecisionEntry | None:
        """The decision on `ir_hash`; its `snapshot` is None unless `with_snapshot` (it is large)."""
        ...

    def submitters(self, tenant_id: str, ir_hash: str) -> set[str]: ...

    def insert_request(self, request: ApprovalRequest) -> None: ...

    def get_request(self, request_id: str) -> ApprovalRequest | None: ...

    def transition(self, request_id: str, *, tenant_id: str, from_states: tuple[RequestState, ...],
                   changes: Mapping[str, Any]) -> ApprovalRequest | None:
        """Apply `changes` when the request is in one of `from_states`; the request after, or None."""
        ...

    def list_requests(self, tenant_id: str, *, state: RequestState | None, limit: int,
                      cursor: str | None) -> tuple[list[ApprovalRequest], str | None]: ...

    def take_sealed_token(self, request_id: str, *, tenant_id: str, claimed_by: str,
                          claimed_us: int) -> str | None:
        """In one atomic step: the sealed token of a `granted` request of `tenant_id`, erased,
        and the claim recorded; None, with nothing written, when there is none to take."""
        ...
