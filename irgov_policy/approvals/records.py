"""What an approval is: its states, its records, and the results the service returns.

Times inside stores are integers of microseconds since the Unix epoch, so that `expires_at -
created_at` is exactly the TTL and comparisons are exact in SQL, Lua and Python alike.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ..errors import InvalidTTLError
from ..events.envelope import format_timestamp

__all__ = [
    "Approval",
    "ApprovalRecord",
    "ApprovalStatus",
    "ConsumeOutcome",
    "ConsumeReason",
    "ConsumeResult",
    "from_us",
    "to_us",
    "validate_ttl",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    CONSUMED = "consumed"
    EXPIRED = "expired"
    REVOKED = "revoked"


FINISHED_STATUSES = frozenset({ApprovalStatus.CONSUMED, ApprovalStatus.EXPIRED, ApprovalStatus.REVOKED})


class ConsumeReason(StrEnum):
    TOKEN_NOT_FOUND = "token_not_found"
    TENANT_MISMATCH = "tenant_mismatch"
    IR_HASH_MISMATCH = "ir_hash_mismatch"
    ALREADY_CONSUMED = "already_consumed"
    EXPIRED = "expired"
    REVOKED = "revoked"


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of a tz-aware datetime (exact, no float on the way)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are refused: use a tz-aware UTC datetime")
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def validate_ttl(ttl: object, *, max_ttl: int | float) -> int | float:
    """Return `ttl` unchanged when it is a finite number of seconds in `(0, max_ttl]` that is a
    whole number of microseconds; otherwise raise `InvalidTTLError`. Nothing is ever coerced."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise InvalidTTLError(f"ttl `{ttl!r}` must be a number of seconds, not a `{type(ttl).__name__}`")
    if isinstance(ttl, float) and not math.isfinite(ttl):
        raise InvalidTTLError(f"ttl `{ttl}` must be a finite number of seconds")
    if ttl <= 0:
        raise InvalidTTLError(f"ttl `{ttl}` must be greater than 0 seconds")
    if ttl > max_ttl:
        raise InvalidTTLError(f"ttl `{ttl}` exceeds the maximum of {max_ttl} seconds")
    if ttl_us(ttl) / 1_000_000 != ttl:
        raise InvalidTTLError(f"ttl `{ttl}` must be a whole number of microseconds")
    return ttl


def ttl_us(ttl: int | float) -> int:
    if isinstance(ttl, int):
        return ttl * 1_000_000
    return round(ttl * 1_000_000)


def encode_ttl(ttl: int | float) -> str:
    return json.dumps(ttl)


def decode_ttl(text: str) -> int | float:
    value = json.loads(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"stored ttl `{text}` is not a number")
    return value


@dataclass(frozen=True)
class ApprovalRecord:
    """What a store keeps. Holds the token digest, so it never leaves the approvals package:
    the service turns it into an `Approval` first."""

    approval_id: str
    tenant_id: str
    ir_hash: str
    token_kid: str
    token_digest: str
    status: ApprovalStatus
    ttl_seconds: int | float
    created_us: int
    expires_us: int
    created_by: str | None = None
    reason: str | None = None
    consumed_us: int | None = None
    consumed_by: str | None = None
    revoked_us: int | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    expired_us: int | None = None
    finished_us: int | None = None
    mismatches: int = 0
    #: the IR's `request_id`, carried into every event of the approval as `meta.correlation_id`
    correlation_id: str | None = None

    def __repr__(self) -> str:
        # The digest is not the token, but nothing that identifies the secret goes into logs.
        return (f"ApprovalRecord(approval_id={self.approval_id!r}, tenant_id={self.tenant_id!r}, "
                f"status={self.status.value!r})")

    def effective_status(self, now_us: int) -> ApprovalStatus:
        """The status a reader sees: a pending approval past its expiry reads as expired."""
        if self.status is ApprovalStatus.PENDING and self.expires_us <= now_us:
            return ApprovalStatus.EXPIRED
        return self.status

    def public(self, now_us: int | None = None) -> Approval:
        status = self.status if now_us is None else self.effective_status(now_us)
        expired_us = self.expired_us
        if status is ApprovalStatus.EXPIRED and expired_us is None:
            expired_us = self.expires_us
        return Approval(
            approval_id=self.approval_id,
            tenant_id=self.tenant_id,
            ir_hash=self.ir_hash,
            status=status,
            ttl_seconds=self.ttl_seconds,
            created_at=from_us(self.created_us),
            expires_at=from_us(self.expires_us),
            created_by=self.created_by,
            reason=self.reason,
            consumed_at=None if self.consumed_us is None else from_us(self.consumed_us),
            consumed_by=self.consumed_by,
            revoked_at=None if self.revoked_us is None else from_us(self.revoked_us),
            revoked_by=self.revoked_by,
            revoke_reason=self.revoke_reason,
            expired_at=None if expired_us is None else from_us(expired_us),
            mismatches=self.mismatches,
        )

    def with_changes(self, **changes: Any) -> ApprovalRecord:
        return replace(self, **changes)


@dataclass(frozen=True)
class Approval:
    """An approval as callers see it: never the token, never its digest."""

    approval_id: str
    tenant_id: str
    ir_hash: str
    status: ApprovalStatus
    ttl_seconds: int | float
    created_at: datetime
    expires_at: datetime
    created_by: str | None = None
    reason: str | None = None
    consumed_at: datetime | None = None
    consumed_by: str | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    expired_at: datetime | None = None
    mismatches: int = 0

    def to_dict(self) -> dict[str, Any]:
        def ts(value: datetime | None) -> str | None:
            return None if value is None else format_timestamp(value)

        return {
            "approval_id": self.approval_id,
            "tenant_id": self.tenant_id,
            "ir_hash": self.ir_hash,
            "status": self.status.value,
            "ttl_seconds": self.ttl_seconds,
            "created_at": ts(self.created_at),
            "expires_at": ts(self.expires_at),
            "created_by": self.created_by,
            "reason": self.reason,
            "consumed_at": ts(self.consumed_at),
            "consumed_by": self.consumed_by,
            "revoked_at": ts(self.revoked_at),
            "revoked_by": self.revoked_by,
            "revoke_reason": self.revoke_reason,
            "expired_at": ts(self.expired_at),
            "mismatches": self.mismatches,
        }


@dataclass(frozen=True)
class ConsumeResult:
    """What `consume` tells its caller. `status` is the approval's status after the call
    (None when the caller may not know the approval exists)."""

    success: bool
    status: ApprovalStatus | None
    reason: ConsumeReason | None
    approval_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "status": None if self.status is None else self.status.value,
            "reason": None if self.reason is None else self.reason.value,
            "approval_id": self.approval_id,
        }


@dataclass(frozen=True)
class ConsumeOutcome:
    """What a store's atomic consume decided. `reason` is None on success; `expired_now` and
    `revoked_now` say whether this very call moved the approval to that state; `replayed` that
    the success is an earlier consume's, found by its idempotency key."""

    reason: ConsumeReason | None
    record: ApprovalRecord | None
    expired_now: bool = False
    revoked_now: bool = False
    #: the consume's idempotency key was bound to this very consume: nothing was written
    replayed: bool = False

    @property
    def success(self) -> bool:
        return self.reason is None and self.record is not None
