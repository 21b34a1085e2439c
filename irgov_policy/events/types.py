"""The nine governance event types of the contract, the extension types this package adds, and
which of them are critical."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CRITICAL_EVENT_TYPES", "EXTENSION_EVENT_TYPES", "EventType", "ExtensionEventType", "is_critical"]


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




class ExtensionEventType(StrEnum):
    """Types beyond the contract's nine, same envelope (docs/events.md, "Extension types")."""

    PACKS_RELOADED = "ir.packs_reloaded"
    CONSUME_RATE_LIMITED = "ir.consume_rate_limited"
    APPROVAL_REQUESTED = "ir.approval_requested"
    APPROVAL_REQUEST_REVOKED = "ir.approval_request_revoked"


EXTENSION_EVENT_TYPES = frozenset(ExtensionEventType)

# A change of the rules in force is an audit fact: it must not be lost either.
_CRITICAL_EXTENSION_TYPES = frozenset({ExtensionEventType.PACKS_RELOADED})


def is_critical(event_type: str) -> bool:
    return event_type in CRITICAL_EVENT_TYPES or event_type in _CRITICAL_EXTENSION_TYPES
