"""The in-process store: a dict behind a lock, bounded by a record cap and the sweeper.

For tests and single-process hosts; nothing survives a restart, so it has no outbox and the
bus is the only path of its events."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..errors import StoreError
from ..events.envelope import Event
from .ledger_memory import MemoryLedger
from .ledger_records import ApprovalRequest, Ledger, RequestState
from .records import FINISHED_STATUSES, ApprovalRecord, ApprovalStatus, ConsumeOutcome, ConsumeReason
from .store import check_replay, decide_consume, decode_cursor, encode_cursor, expire_each, outcome

__all__ = ["MemoryApprovalStore"]

DEFAULT_MAX_RECORDS = 100_000


class MemoryApprovalStore:
    outbox_url: str | None = None

    def __init__(self, *, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 1:
            raise StoreError(f"memory store `max_records` must be a positive integer, not `{max_records}`")
        self.max_records = max_records
        self._lock = threading.Lock()
        self._records: dict[str, ApprovalRecord] = {}
        self._by_digest: dict[str, str] = {}
        #: (tenant, idempotency key) -> approval id, for consumes made with a key; and back
        self._consume_keys: dict[tuple[str, str], str] = {}
        self._key_of: dict[str, tuple[str, str]] = {}
        #: approval id -> the gate's answer recorded with its keyed consume
        self._answers: dict[str, str] = {}
        self._ledger = MemoryLedger(self._lock)
        self.ledger: Ledger = self._ledger

    def __repr__(self) -> str:
        return f"MemoryApprovalStore(records={len(self._records)})"

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def insert(self, record: ApprovalRecord) -> None:
        with self._lock:
            self._insert_locked(record)

    def _insert_locked(self, record: ApprovalRecord) -> None:
        if len(self._records) >= self.max_records:
            # Refusing beats growing without bound: the sweeper and purge make room.
            raise StoreError(f"memory approval store is full ({self.max_records} records): purge finished ones")
        if record.approval_id in self._records or record.token_digest in self._by_digest:
            raise StoreError(f"approval `{record.approval_id}` already exists")
        self._records[record.approval_id] = record
        self._by_digest[record.token_digest] = record.approval_id

    def grant(self, request_id: str, *, tenant_id: str, granted_by: str, granted_us: int,
              record: ApprovalRecord, event: Event, delivery: str = "response",
              sealed_token: str | None = None) -> ApprovalRequest | None:
        """Under the one lock: the insert is checked first, so a refused approval leaves the
        request `requested`. The event goes on the bus only (no durable outbox here)."""
        with self._lock:
            request = self._ledger.get_request_locked(request_id)
            if request is None or request.tenant_id != tenant_id or request.state is not RequestState.REQUESTED:
                return None
            self._insert_locked(record)
            return self._ledger.transition_locked(
                request_id, tenant_id, (RequestState.REQUESTED,),
                {"state": RequestState.GRANTED, "granted_by": granted_by, "granted_us": granted_us,
                 "approval_id": record.approval_id, "delivery": delivery, "sealed_token": sealed_token})

    def revoke_request(self, request_id: str, *, tenant_id: str, now_us: int, by: str | None,
                       reason: str | None) -> tuple[ApprovalRequest | None, ApprovalRecord | None]:
        with self._lock:
            request = self._ledger.get_request_locked(request_id)
            if request is None or request.tenant_id != tenant_id:
                return None, None
            record = self._records.get(request.approval_id) if request.approval_id is not None else None
            if record is not None:
                if record.status is ApprovalStatus.PENDING and record.expires_us > now_us:
                    record = record.with_changes(status=ApprovalStatus.REVOKED, revoked_us=now_us, revoked_by=by,
                                                 revoke_reason=reason, finished_us=now_us)
                    self._records[record.approval_id] = record
                elif record.status is not ApprovalStatus.REVOKED:
                    return request, record  # consumed or expired: the request stays as it is
            after = self._ledger.transition_locked(
                request_id, tenant_id, (RequestState.REQUESTED, RequestState.GRANTED),
                {"state": RequestState.REVOKED, "revoked_by": by, "revoked_us": now_us, "revoke_reason": reason,
                 "sealed_token": None})
            return after or request, record

    def repair(self) -> int:
        """Nothing outlives the process, so nothing is ever left half-done."""
        return 0

    def get(self, approval_id: str) -> ApprovalRecord | None:
        with self._lock:
            return self._records.get(approval_id)

    def find_by_digests(self, digests: Sequence[str]) -> ApprovalRecord | None:
        with self._lock:
            for digest in digests:
                approval_id = self._by_digest.get(digest)
                if approval_id is not None:
                    return self._records.get(approval_id)
        return None

    def consume(self, approval_id: str, *, tenant_id: str, ir_hash: str, now_us: int,
                consumed_by: str | None, event: Event, max_mismatches: int,
                idempotency_key: str | None = None, answer: str | None = None) -> ConsumeOutcome:
        with self._lock:
            if idempotency_key is not None:
                bound = self._consume_keys.get((tenant_id, idempotency_key))
                if bound is not None and bound in self._records:
                    return check_replay(idempotency_key, self._records[bound], approval_id=approval_id,
                                        consumed_by=consumed_by, ir_hash=ir_hash)
            record = self._records.get(approval_id)
            if record is None:
                return ConsumeOutcome(ConsumeReason.TOKEN_NOT_FOUND, None)
            decision = decide_consume(record, tenant_id=tenant_id, ir_hash=ir_hash, now_us=now_us,
                                      consumed_by=consumed_by, max_mismatches=max_mismatches)
            self._records[approval_id] = decision[1]
            if decision[0] is None and idempotency_key is not None:
                self._consume_keys[(tenant_id, idempotency_key)] = approval_id
                self._key_of[approval_id] = (tenant_id, idempotency_key)
                if answer is not None:
                    self._answers[approval_id] = answer
            return outcome(decision)

    def bound_consume(self, tenant_id: str, idempotency_key: str) -> tuple[ApprovalRecord, str | None] | None:
        with self._lock:
            bound = self._consume_keys.get((tenant_id, idempotency_key))
            record = None if bound is None else self._records.get(bound)
            return None if record is None else (record, self._answers.get(record.approval_id))

    def expire(self, approval_id: str, now_us: int) -> tuple[ApprovalRecord | None, bool]:
        with self._lock:
            record = self._records.get(approval_id)
            if record is None or record.status is not ApprovalStatus.PENDING or record.expires_us > now_us:
                return record, False
            record = record.with_changes(status=ApprovalStatus.EXPIRED, expired_us=record.expires_us,
                                         finished_us=record.expires_us)
            self._records[approval_id] = record
            return record, True

    def revoke(self, approval_id: str, *, now_us: int, by: str | None,
               reason: str | None) -> tuple[ApprovalRecord | None, bool]:
        with self._lock:
            record = self._records.get(approval_id)
            if record is None or record.status is not ApprovalStatus.PENDING or record.expires_us <= now_us:
                return record, False
            record = record.with_changes(status=ApprovalStatus.REVOKED, revoked_us=now_us, revoked_by=by,
                                         revoke_reason=reason, finished_us=now_us)
            self._records[approval_id] = record
            return record, True

    def list_page(self, tenant_id: str, *, status: ApprovalStatus | None, limit: int, cursor: str | None,
             now_us: int) -> tuple[list[ApprovalRecord], str | None]:
        after = decode_cursor(cursor) if cursor is not None else None
        with self._lock:
            mine = [r for r in self._records.values() if r.tenant_id == tenant_id]
        mine.sort(key=lambda r: (r.created_us, r.approval_id), reverse=True)
        page: list[ApprovalRecord] = []
        for record in mine:
            if after is not None and (record.created_us, record.approval_id) >= after:
                continue
            if status is not None and record.effective_status(now_us) is not status:
                continue
            if len(page) == limit:
                return page, encode_cursor(page[-1])
            page.append(record)
        return page, None

    def expire_due(self, now_us: int, limit: int) -> list[ApprovalRecord]:
        with self._lock:
            due = [r.approval_id for r in self._records.values()
                   if r.status is ApprovalStatus.PENDING and r.expires_us <= now_us][:limit]
        return expire_each(self, due, now_us)

    def purge(self, cutoff_us: int) -> int:
        with self._lock:
            gone = [r for r in self._records.values()
                    if r.status in FINISHED_STATUSES and r.finished_us is not None and r.finished_us < cutoff_us]
            for record in gone:
                del self._records[record.approval_id]
                self._by_digest.pop(record.token_digest, None)
                key = self._key_of.pop(record.approval_id, None)
                if key is not None:
                    self._consume_keys.pop(key, None)
                self._answers.pop(record.approval_id, None)
            pending = {r.approval_id for r in self._records.values() if r.status is ApprovalStatus.PENDING}
            self._ledger.purge_locked(cutoff_us, pending)
            return len(gone)

    def close(self) -> None:
        """Nothing to release; present so every store closes the same way."""
