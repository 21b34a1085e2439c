"""The nine governance event types of the contract, and which of them are critical."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CRITICAL_EVENT_TYPES", "EventType", "is_critical"]


class EventType(StrEnum):
    APPROVAL_CREATED = "ir.approval_created"
    APPROVAL_CONSUMED = "ir.approval_consumed"
    APPROVAL_EXPIRED = "ir.approval_expired"
    APPROVAL_INVALID = "ir.approval_invalid"
    VALIDATED_PASS = "ir.validated_pass"
    VALIDATED_ESCALATE = "ir.validated_escalate"
    VALIDATED_REJECT = "ir.validated_reject"
    DAG_DIFF_OK = "ir.dag_diff_ok"
    DAG_DIFF_FAILED = "ir.dag_diff_failed"


# A critical event must be durable before the publishing call returns.
CRITICAL_EVENT_TYPES = frozenset(
    {
        EventType.APPROVAL_CONSUMED,
        EventType.VALIDATED_ESCALATE,
        EventType.VALIDATED_REJECT,
        EventType.DAG_DIFF_FAILED,
        EventType.APPROVAL_INVALID,
    }
)


def is_critical(event_type: str) -> bool:
    return event_type in CRITICAL_EVENT_TYPES
