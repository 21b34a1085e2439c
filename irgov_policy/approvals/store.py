"""The interface every approval store implements, and the consume rules shared by the stores
that run them in Python (memory, SQLite). The Redis store runs the same rules in Lua; the
contract test suite holds all three to the same behaviour."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from ..errors import ApprovalError, IdempotencyConflictError
from ..events.envelope import Event
from ..text_rules import APPROVAL_ID
from .ledger_records import ApprovalRequest, Ledger
from .records import ApprovalRecord, ApprovalStatus, ConsumeOutcome, ConsumeReason

__all__ = ["ApprovalStore", "check_replay", "decide_consume", "decode_cursor", "encode_cursor"]

REVOKED_BY_MISMATCHES = "too_many_mismatches"
_CURSOR = re.compile(rf"(\d{{16}}):({APPROVAL_ID.pattern})")


@runtime_checkable
class ApprovalStore(Protocol):
    """Keeps approval records. Every method that changes a record is atomic in the store."""

    #: where this store records critical events in the same atomic unit as a consume or a grant
    #: (`sqlite:////abs.db` or `redis://...?stream=...`), None when it has no durable outbox.
    outbox_url: str | None

    #: the kernel's ledger (decisions, submitters, approval requests), in this store's database
    ledger: Ledger

    def insert(self, record: ApprovalRecord) -> None: ...

    def grant(self, request_id: str, *, tenant_id: str, granted_by: str, granted_us: int,
              record: ApprovalRecord, event: Event, delivery: str = "response",
              sealed_token: str | None = None) -> ApprovalRequest | None:
        """In one atomic unit: the request `requested -> granted` (by `granted_by` at `granted_us`,
        linked to `record`, with its token's `delivery` and, for a claim, the `sealed_token`), the
        approval `record` inserted, and `event` recorded in the outbox. None, with nothing
        written, when the request is not `requested` for `tenant_id`."""
        ...

    def revoke_request(self, request_id: str, *, tenant_id: str, now_us: int, by: str | None,
                       reason: str | None) -> tuple[ApprovalRequest | None, ApprovalRecord | None]:
        """In one atomic unit: revoke the request's approval when it is pending, and the request
        (`requested` or `granted` -> `revoked`). When the approval is consumed or expired nothing
        is written. The request and its approval after; `(None, None)` for no request of `tenant_id`."""
        ...

    def repair(self) -> int:
        """Put right what a crash of an earlier layout left half-done (a request granted with no
        approval); run at start-up, logs each repair, returns how many."""
        ...

    def get(self, approval_id: str) -> ApprovalRecord | None: ...

    def find_by_digests(self, digests: Sequence[str]) -> ApprovalRecord | None: ...

    def consume(self, approval_id: str, *, tenant_id: str, ir_hash: str, now_us: int,
                consumed_by: str | None, event: Event, max_mismatches: int,
                idempotency_key: str | None = None, answer: str | None = None) -> ConsumeOutcome:
        """The consume rules (`decide_consume`) in one atomic unit; on success `event` is recorded
        in the outbox and `idempotency_key`, when given, bound to this consume for `tenant_id`
        as long as the approval is kept, with `answer` (the execution gate's answer, text) beside
        it. A key already bound is looked up first: the same approval, caller and IR hash is
        `ConsumeOutcome(replayed=True)` with nothing written; anything else raises
        `IdempotencyConflictError` (`check_replay`)."""
        ...

    def bound_consume(self, tenant_id: str, idempotency_key: str) -> tuple[ApprovalRecord, str | None] | None:
        """The approval a consume with `idempotency_key` consumed for `tenant_id`, and the answer
        recorded with that consume (None when it was made without one); None when the key is
        bound to nothing kept. Reads only."""
        ...

    def expire(self, approval_id: str, now_us: int) -> tuple[ApprovalRecord | None, bool]: ...

    def revoke(self, approval_id: str, *, now_us: int, by: str | None,
               reason: str | None) -> tuple[ApprovalRecord | None, bool]: ...

    def list_page(self, tenant_id: str, *, status: ApprovalStatus | None, limit: int, cursor: str | None,
             now_us: int) -> tuple[list[ApprovalRecord], str | None]: ...

    def expire_due(self, now_us: int, limit: int) -> list[ApprovalRecord]: ...

    def purge(self, cutoff_us: int) -> int: ...

    def close(self) -> None: ...


def encode_cursor(record: ApprovalRecord) -> str:
    """Position after `record` in newest-first order; also the Redis index member."""
    return f"{record.created_us:016d}:{record.approval_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    match = _CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None
    if match is None:
        raise ApprovalError(f"cursor `{cursor}` is not one returned by `list`")
    return int(match.group(1)), match.group(2)


def _mismatch(record: ApprovalRecord, reason: ConsumeReason, now_us: int,
              max_mismatches: int) -> tuple[ConsumeReason, ApprovalRecord, bool, bool]:
    count = record.mismatches + 1
    if count >= max_mismatches:
        revoked = record.with_changes(
            mismatches=count, status=ApprovalStatus.REVOKED, revoked_us=now_us,
            revoke_reason=REVOKED_BY_MISMATCHES, finished_us=now_us,
        )
        return reason, revoked, False, True
    return reason, record.with_changes(mismatches=count), False, False


def decide_consume(record: ApprovalRecord, *, tenant_id: str, ir_hash: str, now_us: int,
                   consumed_by: str | None, max_mismatches: int
                   ) -> tuple[ConsumeReason | None, ApprovalRecord, bool, bool]:
    """The consume rules on one record: `(reason or None, record after, expired_now, revoked_now)`.

    Order matters: the tenant comes first so another tenant learns nothing about the state;
    a finished approval keeps its state (a consumed token replayed after expiry is still
    `already_consumed`); mismatches only count against a live approval."""
    live = record.status is ApprovalStatus.PENDING and record.expires_us > now_us
    if record.tenant_id != tenant_id:
        if live:
            return _mismatch(record, ConsumeReason.TENANT_MISMATCH, now_us, max_mismatches)
        return ConsumeReason.TENANT_MISMATCH, record, False, False
    if record.status is ApprovalStatus.CONSUMED:
        return ConsumeReason.ALREADY_CONSUMED, record, False, False
    if record.status is ApprovalStatus.REVOKED:
        return ConsumeReason.REVOKED, record, False, False
    if record.status is ApprovalStatus.EXPIRED:
        return ConsumeReason.EXPIRED, record, False, False
    if not live:
        expired = record.with_changes(status=ApprovalStatus.EXPIRED, expired_us=record.expires_us,
                                      finished_us=record.expires_us)
        return ConsumeReason.EXPIRED, expired, True, False
    if not hmac.compare_digest(record.ir_hash.encode(), ir_hash.encode()):
        return _mismatch(record, ConsumeReason.IR_HASH_MISMATCH, now_us, max_mismatches)
    consumed = record.with_changes(status=ApprovalStatus.CONSUMED, consumed_us=now_us,
                                   consumed_by=consumed_by, finished_us=now_us)
    return None, consumed, False, False


def check_replay(key: str, bound: ApprovalRecord, *, approval_id: str, consumed_by: str | None,
                 ir_hash: str) -> ConsumeOutcome:
    """The answer to a consume whose idempotency key is bound to the consume of `bound`: its
    success again when it is the same consume (same approval, so the same token; same caller;
    same IR hash), else `IdempotencyConflictError` saying which differs."""
    if bound.approval_id != approval_id:
        raise IdempotencyConflictError(f"idempotency key `{key}` was used to consume another approval token")
    if bound.consumed_by != consumed_by:
        raise IdempotencyConflictError(f"idempotency key `{key}` was used by another caller")
    if not hmac.compare_digest(bound.ir_hash.encode(), ir_hash.encode()):
        raise IdempotencyConflictError(f"idempotency key `{key}` was used for another ir hash")
    return ConsumeOutcome(None, bound, replayed=True)


def outcome(decision: tuple[ConsumeReason | None, ApprovalRecord, bool, bool]) -> ConsumeOutcome:
    reason, record, expired_now, revoked_now = decision
    return ConsumeOutcome(reason, record, expired_now, revoked_now)


def expire_each(store: ApprovalStore, approval_ids: Iterable[str], now_us: int) -> list[ApprovalRecord]:
    """Expire the given approvals one by one through `store.expire`; the records that this call
    moved to expired (an approval consumed or revoked meanwhile is left as it is)."""
    expired = []
    for approval_id in approval_ids:
        record, changed = store.expire(approval_id, now_us)
        if changed and record is not None:
            expired.append(record)
    return expired
