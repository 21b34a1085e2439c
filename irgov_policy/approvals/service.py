"""The approval service: create a single-use token for one tenant and one IR hash, consume it
exactly once, and report every outcome as an event.

Nothing this service returns, logs, raises or publishes contains a token or a token digest.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import (
    ApprovalError,
    ApprovalKeyError,
    ConfigError,
    ConflictError,
    DigestError,
    InvalidTTLError,
    NotFoundError,
    StoreError,
)
from ..events.bus import EventBus
from ..events.envelope import Event, format_payload_timestamp, format_timestamp, new_event, uuid7
from ..events.types import EventType
from ..hashing import DEFAULT_ALLOWED_ALGORITHMS, HashRegistry, verify_digest
from ..text_rules import (
    APPROVAL_ID_PREFIX,
    MAX_PRINCIPAL_LENGTH,
    MAX_REASON_LENGTH,
    MAX_TENANT_LENGTH,
    check_idempotency_key,
    check_text,
    holds_token,
)
from .event_builders import created_event, expired_event, invalid_event
from .ledger_records import DELIVERIES, ApprovalRequest, RequestState
from .records import (
    Approval,
    ApprovalRecord,
    ApprovalStatus,
    ConsumeReason,
    ConsumeResult,
    to_us,
    ttl_us,
    validate_ttl,
)
from .sealing import seal_token, unseal_token
from .store import ApprovalStore, check_replay
from .tokens import ApprovalToken, KeyRing, is_well_formed_token, new_token

__all__ = ["ApprovalPage", "ApprovalService"]

logger = logging.getLogger(__name__)

DEFAULT_TTL = 3600
DEFAULT_MAX_TTL = 7 * 86_400
DEFAULT_RETENTION = 7 * 86_400
MAX_PAGE = 1000


@dataclass(frozen=True)
class ApprovalPage:
    """One page of `list`, newest first; pass `next_cursor` back for the next page (None at the end)."""

    items: list[Approval]
    next_cursor: str | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ApprovalService:
    """Approvals for one store and one key ring.

    `key` may be None for a service that only reads, revokes and purges; `create` and `consume`
    then raise `ApprovalKeyError`. `clock` returns tz-aware datetimes (injectable for tests)."""

    def __init__(
        self,
        store: ApprovalStore,
        key: KeyRing | None,
        *,
        bus: EventBus | None = None,
        clock: Callable[[], datetime] | None = None,
        default_ttl: int | float = DEFAULT_TTL,
        max_ttl: int | float = DEFAULT_MAX_TTL,
        max_mismatches: int = 3,
        retention_seconds: int | float = DEFAULT_RETENTION,
        allowed_algorithms: Iterable[str] = DEFAULT_ALLOWED_ALGORITHMS,
        registry: HashRegistry | None = None,
    ) -> None:
        if isinstance(max_ttl, bool) or not isinstance(max_ttl, int | float) or not math.isfinite(max_ttl) \
                or max_ttl <= 0:
            raise ConfigError(f"`max_ttl` must be a positive finite number of seconds, not `{max_ttl!r}`")
        try:
            validate_ttl(default_ttl, max_ttl=max_ttl)
        except InvalidTTLError as exc:
            raise ConfigError(f"`default_ttl`: {exc}") from None
        if isinstance(max_mismatches, bool) or not isinstance(max_mismatches, int) or max_mismatches < 1:
            raise ConfigError(f"`max_mismatches` must be a positive integer, not `{max_mismatches!r}`")
        if isinstance(retention_seconds, bool) or not isinstance(retention_seconds, int | float) \
                or not math.isfinite(retention_seconds) or retention_seconds < 0:
            raise ConfigError(f"`retention_seconds` must be a non-negative number, not `{retention_seconds!r}`")
        if key is not None and not isinstance(key, KeyRing):
            raise ConfigError(f"`key` must be a `KeyRing`, not `{type(key).__name__}`")
        self.store = store
        self._key = key
        self.bus = bus
        self._clock = clock or _utc_now
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.max_mismatches = max_mismatches
        self.retention_seconds = retention_seconds
        self.allowed_algorithms = frozenset(allowed_algorithms)
        self._registry = registry

    def __repr__(self) -> str:
        return f"ApprovalService(store={self.store!r}, key={self._key!r})"

    # -- helpers -----------------------------------------------------------------------------

    def _now(self) -> datetime:
        moment = self._clock()
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise ConfigError("the approval clock must return tz-aware datetimes")
        return moment.astimezone(UTC)

    def _keyring(self) -> KeyRing:
        if self._key is None:
            raise ApprovalKeyError("this approval service has no server key: creating and consuming need one")
        return self._key

    def _check_ir_hash(self, ir_hash: object) -> str:
        if isinstance(ir_hash, str) and holds_token(ir_hash):
            # A token passed where the hash goes (swapped arguments): refuse without echoing it.
            raise DigestError("`ir_hash` holds an approval token, not an `ALGO:HEX` digest")
        verify_digest(ir_hash, allowed=self.allowed_algorithms, registry=self._registry)
        assert isinstance(ir_hash, str)  # verify_digest refuses anything else
        return ir_hash

    def _publish(self, event: Event) -> None:
        if self.bus is None:
            return
        try:
            self.bus.publish(event)
        except Exception as exc:  # the bus promises not to raise; a decision never depends on it
            logger.warning("publishing event %s (%s) failed: %s", event.id, event.type, type(exc).__name__)

    def _decided_request_id(self, tenant_id: str, ir_hash: str) -> str | None:
        """The IR's `request_id` for the event of a consume that names no approval: that of the
        kernel's decision on `tenant_id` and `ir_hash`, when it made one (a failure path only:
        an approval's own events take it from its record, with no read)."""
        try:
            entry = self.store.ledger.get_decision(tenant_id, ir_hash)
        except StoreError as exc:  # the event goes out uncorrelated rather than not at all
            logger.warning("cannot read the decision of ir %s for the event's correlation id: %s", ir_hash, exc)
            return None
        return None if entry is None else entry.request_id

    def _touch_expired(self, record: ApprovalRecord, now: datetime) -> ApprovalRecord:
        """Record the expiry of a pending approval past its time; publish it the first time."""
        if record.status is not ApprovalStatus.PENDING or record.expires_us > to_us(now):
            return record
        after, changed = self.store.expire(record.approval_id, to_us(now))
        if changed and after is not None:
            logger.info("approval %s expired", after.approval_id)
            self._publish(expired_event(after, now))
        return after or record

    # -- create ------------------------------------------------------------------------------

    def create(self, tenant_id: str, ir_hash: str, *, ttl_seconds: int | float | None = None,
               created_by: str | None = None, reason: str | None = None,
               correlation_id: str | None = None) -> tuple[Approval, ApprovalToken]:
        """A pending approval and its token. The token is returned here and nowhere else.
        `correlation_id` is the IR's `request_id` when the caller knows it: the
        `meta.correlation_id` of the approval's events (the kernel's request and break-glass
        paths pass the one of its decision)."""
        check_text("correlation_id", correlation_id, max_length=MAX_PRINCIPAL_LENGTH, optional=True)
        record, token, event = self._new_approval(tenant_id, ir_hash, ttl_seconds, created_by, reason,
                                                  correlation_id)
        self.store.insert(record)
        return self._created(record, event), token

    def grant(self, request: ApprovalRequest, *, granted_by: str, ttl_seconds: int | float | None = None,
              reason: str | None = None, deliver: str = "response") -> tuple[Approval, ApprovalToken, ApprovalRequest]:
        """The approval of an approval request, created in the store's one transaction that also
        moves the request to `granted` and records `ir.approval_created` (`ApprovalStore.grant`):
        a crash leaves the request grantable or granted with its approval, nothing in between.
        With `deliver="claim"` the token is also sealed beside the request, in that transaction,
        for its requester to claim (`claim`); the caller must then drop the token it gets back.
        Raises `ConflictError` when the request was granted or revoked meanwhile."""
        if deliver not in DELIVERIES:
            raise ApprovalError(f"unknown delivery `{deliver}`: use " + ", ".join(f"`{d}`" for d in DELIVERIES))
        record, token, event = self._new_approval(request.tenant_id, request.ir_hash, ttl_seconds, granted_by,
                                                  reason, request.correlation_id)
        sealed = None
        if deliver == "claim":
            sealed = seal_token(self._keyring(), token, request_id=request.request_id, tenant_id=request.tenant_id)
        granted = self.store.grant(request.request_id, tenant_id=request.tenant_id, granted_by=granted_by,
                                   granted_us=record.created_us, record=record, event=event, delivery=deliver,
                                   sealed_token=sealed)
        if granted is None:
            raise ConflictError(f"approval request `{request.request_id}` was granted or revoked meanwhile")
        return self._created(record, event), token, granted

    def claim(self, request: ApprovalRequest, *, claimed_by: str) -> ApprovalToken | None:
        """The token a `claim` grant sealed beside `request`, opened once: the store erases the
        sealed copy as it hands it over. None when there is none (claimed already, revoked, or
        delivered in the grant's answer). The token is never logged."""
        check_text("claimed_by", claimed_by, max_length=MAX_PRINCIPAL_LENGTH)
        sealed = self.store.ledger.take_sealed_token(request.request_id, tenant_id=request.tenant_id,
                                                     claimed_by=claimed_by, claimed_us=to_us(self._now()))
        if sealed is None:
            return None
        return unseal_token(self._keyring(), sealed, request_id=request.request_id, tenant_id=request.tenant_id)

    def _new_approval(self, tenant_id: str, ir_hash: str, ttl_seconds: int | float | None,
                      created_by: str | None, reason: str | None,
                      correlation_id: str | None) -> tuple[ApprovalRecord, ApprovalToken, Event]:
        """A checked pending record, its token and its `ir.approval_created` event (not yet stored)."""
        check_text("tenant_id", tenant_id, max_length=MAX_TENANT_LENGTH)
        self._check_ir_hash(ir_hash)
        ttl = validate_ttl(self.default_ttl if ttl_seconds is None else ttl_seconds, max_ttl=self.max_ttl)
        check_text("created_by", created_by, max_length=MAX_PRINCIPAL_LENGTH, optional=True)
        check_text("reason", reason, max_length=MAX_REASON_LENGTH, optional=True)
        keyring = self._keyring()
        now = self._now()
        created_us = to_us(now)
        token = new_token()
        kid, digest = keyring.digest_current(token)
        record = ApprovalRecord(
            approval_id=APPROVAL_ID_PREFIX + uuid7(created_us // 1000).hex,
            tenant_id=tenant_id,
            ir_hash=ir_hash,
            token_kid=kid,
            token_digest=digest,
            status=ApprovalStatus.PENDING,
            ttl_seconds=ttl,
            created_us=created_us,
            expires_us=created_us + ttl_us(ttl),
            created_by=created_by,
            reason=reason,
            correlation_id=correlation_id,
        )
        return record, token, created_event(record, now)

    def _created(self, record: ApprovalRecord, event: Event) -> Approval:
        approval = record.public()
        logger.info("approval %s created for tenant %s, expires %s", approval.approval_id, record.tenant_id,
                    format_timestamp(approval.expires_at))
        self._publish(event)
        return approval

    # -- consume -----------------------------------------------------------------------------

    def consume(self, token: str, *, tenant_id: str, ir_hash: str, consumed_by: str | None = None,
                idempotency_key: str | None = None,
                answer: Callable[[ConsumeResult], str | None] | None = None) -> ConsumeResult:
        """Consume `token` for `tenant_id` and `ir_hash`. Exactly one call ever succeeds per token.

        A token of another tenant is reported as `token_not_found` to the caller (it learns
        nothing), while the event records `tenant_mismatch` under the owning tenant.

        With `idempotency_key`, a success binds the key to this consume in the store's own
        transaction, for as long as the approval is kept: a retry with the same key, token,
        caller and IR hash (after a crash, a timeout, a lost answer) gets the same success
        again, with nothing written and no event; the same key with another token, caller or
        IR hash raises `IdempotencyConflictError`.

        `answer`, with a key, is called with the success this consume would return, before the
        store is touched; the text it returns (the execution gate's whole answer) is kept in the
        same transaction as the consume and the key, for `replay_consume`."""
        check_text("tenant_id", tenant_id, max_length=MAX_TENANT_LENGTH)
        self._check_ir_hash(ir_hash)
        check_text("consumed_by", consumed_by, max_length=MAX_PRINCIPAL_LENGTH, optional=True)
        check_idempotency_key(idempotency_key)
        keyring = self._keyring()
        now = self._now()
        now_us = to_us(now)

        record: ApprovalRecord | None = None
        if is_well_formed_token(token):
            record = self.store.find_by_digests([d for _, d in keyring.candidate_digests(token)])
            if record is not None and not keyring.matches(token, record.token_kid, record.token_digest):
                record = None
        if record is None:
            logger.info("approval consume refused for tenant %s: token_not_found", tenant_id)
            self._publish(invalid_event(tenant_id=tenant_id, ir_hash=ir_hash,
                                              reason=ConsumeReason.TOKEN_NOT_FOUND, attempted_by=consumed_by,
                                              approval_id=None, now=now,
                                              correlation_id=self._decided_request_id(tenant_id, ir_hash)))
            return ConsumeResult(False, None, ConsumeReason.TOKEN_NOT_FOUND, None)

        # Built before the store call: durable stores record this very event (same id) in the
        # transaction that consumes, and the bus gets it afterwards.
        consumed_event = new_event(EventType.APPROVAL_CONSUMED, {
            "approval_id": record.approval_id,
            "tenant_id": record.tenant_id,
            "ir_hash": record.ir_hash,
            "consumed_by": consumed_by,
            "consumed_at": format_payload_timestamp(now),
            "time_to_consume_seconds": max(0, now_us - record.created_us) // 1_000_000,  # whole seconds
            "was_expired": False,
        }, tenant_id=record.tenant_id, correlation_id=record.correlation_id, now=now)
        recorded = None
        if answer is not None and idempotency_key is not None:
            recorded = answer(ConsumeResult(True, ApprovalStatus.CONSUMED, None, record.approval_id))
        outcome = self.store.consume(record.approval_id, tenant_id=tenant_id, ir_hash=ir_hash, now_us=now_us,
                                     consumed_by=consumed_by, event=consumed_event,
                                     max_mismatches=self.max_mismatches, idempotency_key=idempotency_key,
                                     answer=recorded)
        after = outcome.record or record
        if outcome.replayed:
            # The first answer again: that consume's event is on record already.
            logger.info("approval %s: consume replayed for its idempotency key", record.approval_id)
            return ConsumeResult(True, ApprovalStatus.CONSUMED, None, record.approval_id)
        if outcome.success:
            logger.info("approval %s consumed by tenant %s", record.approval_id, tenant_id)
            self._publish(consumed_event)
            return ConsumeResult(True, ApprovalStatus.CONSUMED, None, record.approval_id)

        reason = outcome.reason or ConsumeReason.TOKEN_NOT_FOUND
        if outcome.expired_now:
            logger.info("approval %s expired", record.approval_id)
            self._publish(expired_event(after, now))
        extra: dict[str, Any] = {}
        if outcome.revoked_now:
            extra["revoked"] = True
            logger.warning("approval %s revoked after %d mismatched attempts", record.approval_id, after.mismatches)
        if reason is ConsumeReason.TOKEN_NOT_FOUND:
            # The record vanished between the lookup and the consume (purged): not found.
            self._publish(invalid_event(tenant_id=tenant_id, ir_hash=ir_hash, reason=reason,
                                              attempted_by=consumed_by, approval_id=None, now=now,
                                              correlation_id=record.correlation_id))
            return ConsumeResult(False, None, reason, None)
        if reason is ConsumeReason.TENANT_MISMATCH:
            logger.warning("approval %s: consume attempted by another tenant", record.approval_id)
            extra["attempted_tenant_id"] = tenant_id
            self._publish(invalid_event(tenant_id=record.tenant_id, ir_hash=ir_hash, reason=reason,
                                              attempted_by=consumed_by, approval_id=record.approval_id,
                                              now=now, extra=extra, correlation_id=record.correlation_id))
            return ConsumeResult(False, None, ConsumeReason.TOKEN_NOT_FOUND, None)
        logger.info("approval %s consume refused: %s", record.approval_id, reason.value)
        self._publish(invalid_event(tenant_id=tenant_id, ir_hash=ir_hash, reason=reason,
                                          attempted_by=consumed_by, approval_id=record.approval_id, now=now,
                                          extra=extra, correlation_id=record.correlation_id))
        return ConsumeResult(False, after.status, reason, record.approval_id)

    def replay_consume(self, token: str, *, tenant_id: str, ir_hash: str, consumed_by: str | None,
                       idempotency_key: str) -> tuple[ConsumeResult, str | None] | None:
        """The first success of the consume `idempotency_key` is bound to, when this call is that
        consume again (same token, caller and IR hash), with the answer recorded beside it (None
        when none was); None when the key is bound to nothing kept or the token is unknown (a
        consume then answers as without a key). The key bound to another consume raises
        `IdempotencyConflictError`. Reads only: nothing written, no event."""
        check_text("tenant_id", tenant_id, max_length=MAX_TENANT_LENGTH)
        self._check_ir_hash(ir_hash)
        check_text("consumed_by", consumed_by, max_length=MAX_PRINCIPAL_LENGTH, optional=True)
        check_idempotency_key(idempotency_key)
        bound = self.store.bound_consume(tenant_id, idempotency_key)
        if bound is None or not is_well_formed_token(token):
            return None
        keyring = self._keyring()
        record = self.store.find_by_digests([d for _, d in keyring.candidate_digests(token)])
        if record is None or not keyring.matches(token, record.token_kid, record.token_digest):
            return None
        check_replay(idempotency_key, bound[0], approval_id=record.approval_id, consumed_by=consumed_by,
                     ir_hash=ir_hash)
        return ConsumeResult(True, ApprovalStatus.CONSUMED, None, record.approval_id), bound[1]

    # -- reading and housekeeping ------------------------------------------------------------

    def get(self, approval_id: str, tenant_id: str) -> Approval | None:
        """The approval when it exists and belongs to `tenant_id`; None otherwise (same answer)."""
        check_text("approval_id", approval_id, max_length=MAX_PRINCIPAL_LENGTH)
        check_text("tenant_id", tenant_id, max_length=MAX_TENANT_LENGTH)
        record = self.store.get(approval_id)
        if record is None or record.tenant_id != tenant_id:
            return None
        now = self._now()
        return self._touch_expired(record, now).public(to_us(now))

    def list(self, tenant_id: str, status: ApprovalStatus | str | None = None, limit: int = 50,
             cursor: str | None = None) -> ApprovalPage:
        """Approvals of `tenant_id`, newest first. A pending approval past its expiry is listed
        as expired (the sweeper records it)."""
        check_text("tenant_id", tenant_id, max_length=MAX_TENANT_LENGTH)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ApprovalError(f"`limit` must be an integer from 1 to {MAX_PAGE}, not `{limit!r}`")
        wanted: ApprovalStatus | None = None
        if status is not None:
            try:
                wanted = ApprovalStatus(status)
            except ValueError:
                raise ApprovalError(f"unknown approval status `{status}`: use "
                                    + ", ".join(f"`{s.value}`" for s in ApprovalStatus)) from None
        now_us = to_us(self._now())
        records, next_cursor = self.store.list_page(tenant_id, status=wanted, limit=limit, cursor=cursor,
                                               now_us=now_us)
        return ApprovalPage([r.public(now_us) for r in records], next_cursor)

    def revoke(self, approval_id: str, tenant_id: str, by: str | None = None,
               reason: str | None = None) -> Approval | None:
        """Revoke a pending approval. Returns the approval as it now is (a finished one keeps its
        state), or None when no approval of `tenant_id` has this id."""
        check_text("approval_id", approval_id, max_length=MAX_PRINCIPAL_LENGTH)
        check_text("tenant_id", tenant_id, max_length=MAX_TENANT_LENGTH)
        check_text("by", by, max_length=MAX_PRINCIPAL_LENGTH, optional=True)
        check_text("reason", reason, max_length=MAX_REASON_LENGTH, optional=True)
        record = self.store.get(approval_id)
        if record is None or record.tenant_id != tenant_id:
            return None
        now = self._now()
        record = self._touch_expired(record, now)
        after, changed = self.store.revoke(approval_id, now_us=to_us(now), by=by, reason=reason)
        if changed:
            logger.info("approval %s revoked", approval_id)
        return (after or record).public(to_us(now))

    def revoke_request(self, request: ApprovalRequest, *, by: str,
                       reason: str | None = None) -> tuple[ApprovalRequest, Approval | None]:
        """Withdraw an approval request and revoke its approval while it is pending, as one store
        operation (`ApprovalStore.revoke_request`). Raises `ConflictError` when the approval is
        already consumed or expired, `NotFoundError` when the request is gone."""
        check_text("by", by, max_length=MAX_PRINCIPAL_LENGTH)
        check_text("reason", reason, max_length=MAX_REASON_LENGTH, optional=True)
        now_us = to_us(self._now())
        after, record = self.store.revoke_request(request.request_id, tenant_id=request.tenant_id, now_us=now_us,
                                                  by=by, reason=reason)
        if after is None:
            raise NotFoundError(f"approval request `{request.request_id}` does not exist")
        if after.state is not RequestState.REVOKED:
            status = record.effective_status(now_us).value if record is not None else after.state.value
            raise ConflictError(f"approval request `{request.request_id}` cannot be revoked: its approval is "
                                f"already {status}")
        if record is not None and record.status is ApprovalStatus.REVOKED and record.revoked_us == now_us:
            logger.info("approval %s revoked", record.approval_id)
        return after, (record.public(now_us) if record is not None else None)

    def sweep(self, *, batch: int = 1000) -> int:
        """Record the expiry of every pending approval past its time; one event each."""
        total = 0
        while True:
            now = self._now()
            expired = self.store.expire_due(to_us(now), batch)
            for record in expired:
                self._publish(expired_event(record, now))
            total += len(expired)
            if len(expired) < batch:
                break
        if total:
            logger.info("sweeper expired %d approvals", total)
        return total

    def purge(self, older_than: int | float | timedelta | None = None) -> int:
        """Delete finished approvals that finished more than `older_than` ago (default: the
        retention period). Sweeps first, so expired approvals are recorded before they go."""
        if older_than is None:
            seconds: float = float(self.retention_seconds)
        elif isinstance(older_than, timedelta):
            seconds = older_than.total_seconds()
        elif isinstance(older_than, bool) or not isinstance(older_than, int | float):
            raise ApprovalError(f"`older_than` must be seconds or a timedelta, not `{type(older_than).__name__}`")
        else:
            seconds = float(older_than)
        if not math.isfinite(seconds) or seconds < 0:
            raise ApprovalError(f"`older_than` must be a non-negative finite duration, not `{older_than}`")
        self.sweep()
        # Nothing finished before the epoch: clamping keeps a huge duration from overflowing the
        # stores' 64-bit integers while meaning exactly the same thing (purge nothing).
        cutoff_us = max(0, to_us(self._now()) - round(seconds * 1_000_000))
        removed = self.store.purge(cutoff_us)
        if removed:
            logger.info("purged %d finished approvals", removed)
        return removed

    # -- async forms (the host is asyncio; stores are blocking, so they run in a thread) -----

    async def acreate(self, tenant_id: str, ir_hash: str, *, ttl_seconds: int | float | None = None,
                      created_by: str | None = None, reason: str | None = None,
                      correlation_id: str | None = None) -> tuple[Approval, ApprovalToken]:
        return await asyncio.to_thread(self.create, tenant_id, ir_hash, ttl_seconds=ttl_seconds,
                                       created_by=created_by, reason=reason, correlation_id=correlation_id)

    async def aconsume(self, token: str, *, tenant_id: str, ir_hash: str, consumed_by: str | None = None,
                       idempotency_key: str | None = None,
                       answer: Callable[[ConsumeResult], str | None] | None = None) -> ConsumeResult:
        return await asyncio.to_thread(self.consume, token, tenant_id=tenant_id, ir_hash=ir_hash,
                                       consumed_by=consumed_by, idempotency_key=idempotency_key, answer=answer)

    async def aget(self, approval_id: str, tenant_id: str) -> Approval | None:
        return await asyncio.to_thread(self.get, approval_id, tenant_id)

    async def alist(self, tenant_id: str, status: ApprovalStatus | str | None = None, limit: int = 50,
                    cursor: str | None = None) -> ApprovalPage:
        return await asyncio.to_thread(self.list, tenant_id, status, limit, cursor)

    async def arevoke(self, approval_id: str, tenant_id: str, by: str | None = None,
                      reason: str | None = None) -> Approval | None:
        return await asyncio.to_thread(self.revoke, approval_id, tenant_id, by, reason)

    async def asweep(self) -> int:
        return await asyncio.to_thread(self.sweep)

    async def apurge(self, older_than: int | float | timedelta | None = None) -> int:
        return await asyncio.to_thread(self.purge, older_than)
