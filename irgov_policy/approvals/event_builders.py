"""The events of the approval service, built from a record: `ir.approval_created`,
`ir.approval_expired` and `ir.approval_invalid` (payloads as in the event contract).

Each carries the IR's `request_id` as `meta.correlation_id` when it is known: from the approval
record (its grant copied it from the decision) or, for a consume of no known approval, from the
decision the kernel made on that tenant and IR hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..events.envelope import Event, format_payload_timestamp, new_event
from ..events.types import EventType
from .records import ApprovalRecord, ConsumeReason, from_us

__all__ = ["created_event", "expired_event", "invalid_event"]


def created_event(record: ApprovalRecord, now: datetime) -> Event:
    approval = record.public()
    return new_event(EventType.APPROVAL_CREATED, {
        "approval_id": approval.approval_id,
        "tenant_id": record.tenant_id,
        "ir_hash": record.ir_hash,
        "ttl_seconds": record.ttl_seconds,
        "expires_at": format_payload_timestamp(approval.expires_at),
        "created_by": record.created_by,
        "created_at": format_payload_timestamp(approval.created_at),
    }, tenant_id=record.tenant_id, correlation_id=record.correlation_id, now=now)


def expired_event(record: ApprovalRecord, now: datetime) -> Event:
    return new_event(EventType.APPROVAL_EXPIRED, {
        "approval_id": record.approval_id,
        "tenant_id": record.tenant_id,
        "ir_hash": record.ir_hash,
        "expired_at": format_payload_timestamp(from_us(record.expires_us)),
        "created_at": format_payload_timestamp(from_us(record.created_us)),
        "ttl_seconds": record.ttl_seconds,
        "was_consumed": False,
    }, tenant_id=record.tenant_id, correlation_id=record.correlation_id, now=now)


#: the event contract's four reasons; the finer cause rides in `detail`.
CONTRACT_REASON = {
    ConsumeReason.TOKEN_NOT_FOUND: "token_not_found",
    ConsumeReason.TENANT_MISMATCH: "tenant_mismatch",
    ConsumeReason.IR_HASH_MISMATCH: "ir_hash_mismatch",
    ConsumeReason.ALREADY_CONSUMED: "already_consumed",
    # An expired or revoked token no longer names a usable approval.
    ConsumeReason.EXPIRED: "token_not_found",
    ConsumeReason.REVOKED: "token_not_found",
}


def invalid_event(*, tenant_id: str, ir_hash: str, reason: ConsumeReason, attempted_by: str | None,
                  approval_id: str | None, now: datetime, extra: dict[str, Any] | None = None,
                  correlation_id: str | None = None) -> Event:
    payload: dict[str, Any] = {
        "tenant_id": tenant_id,
        "ir_hash": ir_hash,
        "reason": CONTRACT_REASON[reason],
        "detail": reason.value,
        "attempted_by": attempted_by,
        "attempted_at": format_payload_timestamp(now),
        "approval_id": approval_id,
    }
    payload.update(extra or {})
    return new_event(EventType.APPROVAL_INVALID, payload, tenant_id=tenant_id, correlation_id=correlation_id,
                     now=now)
