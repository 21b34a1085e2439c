"""The ledger of the memory store: dicts behind the store's own lock, so the store's `grant`
claims the request and inserts the approval under one lock, like a transaction."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from ..errors import StoreError
from .ledger_records import (
    ApprovalRequest,
    DecisionEntry,
    RequestState,
    check_changes,
    decode_request_cursor,
    encode_request_cursor,
)

__all__ = ["MemoryLedger"]


class MemoryLedger:
    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self._decisions: dict[tuple[str, str], DecisionEntry] = {}
        self._submitters: dict[tuple[str, str], set[str]] = {}
        self._requests: dict[str, ApprovalRequest] = {}

    def __repr__(self) -> str:
        return f"MemoryLedger(requests={len(self._requests)})"

    def record_decision(self, entry: DecisionEntry, submitted_by: str | None) -> None:
        key = (entry.tenant_id, entry.ir_hash)
        with self.lock:
            self._decisions[key] = entry
            if submitted_by is not None:
                self._submitters.setdefault(key, set()).add(submitted_by)

    def get_decision(self, tenant_id: str, ir_hash: str, *, with_snapshot: bool = False) -> DecisionEntry | None:
        with self.lock:
            entry = self._decisions.get((tenant_id, ir_hash))
        return entry if entry is None or with_snapshot else replace(entry, snapshot=None)

    def submitters(self, tenant_id: str, ir_hash: str) -> set[str]:
        with self.lock:
            return set(self._submitters.get((tenant_id, ir_hash), ()))

    def insert_request(self, request: ApprovalRequest) -> None:
        with self.lock:
            if request.request_id in self._requests:
                raise StoreError(f"approval request `{request.request_id}` already exists")
            self._requests[request.request_id] = request

    def get_request(self, request_id: str) -> ApprovalRequest | None:
        with self.lock:
            return self._requests.get(request_id)

    def get_request_locked(self, request_id: str) -> ApprovalRequest | None:
        return self._requests.get(request_id)

    def transition(self, request_id: str, *, tenant_id: str, from_states: tuple[RequestState, ...],
                   changes: Mapping[str, Any]) -> ApprovalRequest | None:
        check_changes(changes)
        with self.lock:
            return self.transition_locked(request_id, tenant_id, from_states, changes)

    def transition_locked(self, request_id: str, tenant_id: str, from_states: tuple[RequestState, ...],
                          changes: Mapping[str, Any]) -> ApprovalRequest | None:
        """`transition` for a caller that holds `lock` (the store's grant)."""
        request = self._requests.get(request_id)
        if request is None or request.tenant_id != tenant_id or request.state not in from_states:
            return None
        after = replace(request, **changes)
        self._requests[request_id] = after
        return after

    def take_sealed_token(self, request_id: str, *, tenant_id: str, claimed_by: str,
                          claimed_us: int) -> str | None:
        with self.lock:
            request = self._requests.get(request_id)
            if (request is None or request.tenant_id != tenant_id or request.state is not RequestState.GRANTED
                    or request.sealed_token is None):
                return None
            self._requests[request_id] = replace(request, sealed_token=None, claimed_by=claimed_by,
                                                 claimed_us=claimed_us)
            return request.sealed_token

    def list_requests(self, tenant_id: str, *, state: RequestState | None, limit: int,
                      cursor: str | None) -> tuple[list[ApprovalRequest], str | None]:
        after = decode_request_cursor(cursor) if cursor is not None else None
        with self.lock:
            mine = [r for r in self._requests.values() if r.tenant_id == tenant_id
                    and (state is None or r.state is state)]
        mine.sort(key=lambda r: (r.created_us, r.request_id), reverse=True)
        if after is not None:
            mine = [r for r in mine if (r.created_us, r.request_id) < after]
        page = mine[:limit]
        return page, (encode_request_cursor(page[-1]) if len(mine) > limit and page else None)

    def purge_locked(self, cutoff_us: int, pending_approvals: Collection[str]) -> int:
        """Forget decisions and requests older than `cutoff_us`, except a request whose approval
        is still pending; the caller holds `lock`."""
        gone = [r.request_id for r in self._requests.values()
                if r.created_us < cutoff_us and r.approval_id not in pending_approvals]
        for request_id in gone:
            del self._requests[request_id]
        old = [key for key, entry in self._decisions.items() if entry.decided_us < cutoff_us]
        for key in old:
            del self._decisions[key]
            self._submitters.pop(key, None)
        return len(gone) + len(old)
