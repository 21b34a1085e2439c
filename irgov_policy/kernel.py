"""`Governance`: the one object a host or an executor talks to.

It wires the policy engine, the approval service, the diff audit and the event bus from one
configuration, keeps a ledger of its own decisions, and adds the human step: a submitter asks
for an approval of an ESCALATE decision, an approver grants it and receives the token once, and
the executor calls `authorize_execution`, which validates, consumes the approval when one is
needed and audits the DAG, refusing at the first doubt.

Every method has an async twin (`a` prefix) that runs the sync one in a worker thread, so an
asyncio host never blocks its loop on SQLite, Redis or CEL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from ._version import __version__
from .approvals import (
    Approval,
    ApprovalService,
    ApprovalStatus,
    ApprovalSweeper,
    ApprovalToken,
    ConsumeResult,
    KeyRing,
    load_keyring,
    open_store,
)
from .approvals.keyfile import default_key_file, load_or_create_key_file
from .approvals.store import ApprovalStore
from .audit import DiffAuditResult
from .audit import audit as run_audit
from .config import GovernanceConfig, load_config
from .errors import (
    ApprovalError,
    ApprovalKeyError,
    ConfigError,
    ConflictError,
    IrgovError,
    IRInputError,
    NotEscalatedError,
    NotFoundError,
    SeparationOfDutiesError,
    StoreError,
)
from .events import EventBus, format_timestamp
from .events.config import sink_factories, sink_from_url
from .hashing import HashRegistry, default_registry
from .ledger import (
    REQUEST_ID,
    ApprovalRequest,
    DecisionEntry,
    Ledger,
    RequestState,
    ledger_for_store,
    new_request_id,
)
from .model import IR, InputLimits, load_ir, parse_dag_nodes, parse_ir
from .policy.decision import Decision, Status
from .policy.evaluator import PolicyEngine

__all__ = [
    "REQUEST_STATUSES",
    "ApprovalRequestView",
    "Clearance",
    "Governance",
    "Grant",
    "default_key_file",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: what `GET /approvals?status=` filters on: the request's own state, or its approval's.
REQUEST_STATUSES = ("requested", "pending", "consumed", "expired", "revoked")
MAX_PRINCIPAL_LENGTH = 200
MAX_REASON_LENGTH = 2000
MAX_PAGE = 200
DEFAULT_SWEEP_INTERVAL = 60.0


def _now_us() -> int:
    return time.time_ns() // 1000


def _ts(us: int | None) -> str | None:
    return None if us is None else format_timestamp(datetime.fromtimestamp(us / 1_000_000, UTC))


def _check_text(name: str, value: object, *, max_length: int, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise ApprovalError(f"`{name}` must be a string of 1 to {max_length} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ApprovalError(f"`{name}` must not contain control characters")
    return value


@dataclass(frozen=True)
class ApprovalRequestView:
    """An approval request as callers see it: the request, and its approval once granted.
    Never a token, never a digest."""

    request: ApprovalRequest
    approval: Approval | None

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
            "requested_at": _ts(r.created_us),
            "reason": r.reason,
            "granted_by": r.granted_by,
            "granted_at": _ts(r.granted_us),
            "revoked_by": r.revoked_by,
            "revoked_at": _ts(r.revoked_us),
            "revoke_reason": r.revoke_reason,
            "approval": None if self.approval is None else self.approval.to_dict(),
        }


@dataclass(frozen=True)
class Grant:
    """What an approver receives, once: the request, its approval and the token."""

    request: ApprovalRequestView
    token: ApprovalToken

    def __repr__(self) -> str:
        return f"Grant(request_id={self.request.request.request_id!r}, token=<redacted>)"

    def to_dict(self) -> dict[str, Any]:
        return {**self.request.to_dict(), "token": str(self.token)}


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

    def to_dict(self) -> dict[str, Any]:
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


def _keyring(config: GovernanceConfig) -> KeyRing:
    if config.approval_key:
        return KeyRing.parse(config.approval_key, where="`approval_key`")
    if config.approval_key_file:
        return load_keyring(key_file=config.approval_key_file)
    scheme = config.approval_store.split("://", 1)[0].lower()
    if scheme == "memory":
        return KeyRing.generate("k1")  # nothing outlives the process, not even the key
    if scheme != "sqlite":
        raise ApprovalKeyError(
            f"the approval store `{scheme}` is shared by several hosts: set `IRGOV_APPROVAL_KEY` or "
            "`approval_key_file` to the same key on every host")
    return load_or_create_key_file(default_key_file(config.approval_store))


def _check_algorithms(config: GovernanceConfig, registry: HashRegistry) -> None:
    """A kernel that hashes with an algorithm it then refuses would deny every approval: say so
    at start-up instead."""
    known = ", ".join(f"`{n}`" for n in registry.names())
    for setting, names in (("hash_algorithm", (config.hash_algorithm,)), ("allowed_algorithms", config.allowed_algorithms)):
        for name in names:
            if name not in registry:
                raise ConfigError(f"`{setting}` names unknown hash algorithm `{name}`: known are {known}")
    if config.hash_algorithm not in config.allowed_algorithms:
        raise ConfigError(f"`hash_algorithm` `{config.hash_algorithm}` is not one of `allowed_algorithms`")


def _engine(config: GovernanceConfig, registry: HashRegistry) -> PolicyEngine:
    options: dict[str, Any] = {"budget_ms": config.decision_budget_ms, "hash_algorithm": config.hash_algorithm}
    if config.packs:
        engine = PolicyEngine.from_paths(config.packs, config.engine,
                                         include_plugin_packs=config.plugin_packs, **options)
    elif config.plugin_packs:
        engine = PolicyEngine.default(config.engine, **options)
    else:
        from .policy.shipped import baseline_pack_path

        engine = PolicyEngine.from_paths([baseline_pack_path()], config.engine, **options)
    engine.limits = InputLimits(max_bytes=config.max_bytes, max_depth=config.max_depth,
                                max_steps=config.max_steps)
    return engine


class Governance:
    """Validation, approvals, diff audit and events behind one facade. Build it with
    `Governance.from_config()`; close it (or use it as a context manager) when done."""

    def __init__(self, config: GovernanceConfig, *, engine: PolicyEngine, approvals: ApprovalService,
                 ledger: Ledger, bus: EventBus, registry: HashRegistry | None = None,
                 sweep_interval: float = DEFAULT_SWEEP_INTERVAL) -> None:
        self.config = config
        self.engine = engine
        self.approvals = approvals
        self.ledger = ledger
        self.bus = bus
        self.registry = registry
        self.sweep_interval = sweep_interval
        self._sweeper: ApprovalSweeper | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def from_config(cls, config: GovernanceConfig | str | os.PathLike[str] | None = None, *,
                    environ: Mapping[str, str] | None = None, sinks: Sequence[Any] = (),
                    sweep_interval: float = DEFAULT_SWEEP_INTERVAL, **overrides: Any) -> Governance:
        """Build from a `GovernanceConfig`, a configuration file, or (None) the embedded defaults
        plus `IRGOV_*` variables. `sinks` are extra event sinks (objects) besides `event_sinks`."""
        if isinstance(config, GovernanceConfig):
            cfg = config.with_overrides(**overrides) if overrides else config
        else:
            cfg = load_config(config, environ=environ, **overrides)
        registry = default_registry()
        _check_algorithms(cfg, registry)
        keyring = _keyring(cfg)
        engine = _engine(cfg, registry)
        store: ApprovalStore | None = None
        bus: EventBus | None = None
        ledger: Ledger | None = None
        try:
            factories = sink_factories() if cfg.event_sinks else {}
            all_sinks = [*(sink_from_url(url, factories) for url in cfg.event_sinks), *sinks]
            bus = EventBus(all_sinks, outbox=cfg.outbox,
                           retention_seconds=cfg.event_retention_days * 86400)
            store = open_store(cfg.approval_store)
            if store.outbox_url:
                bus.attach_outbox(store.outbox_url)
            approvals = ApprovalService(
                store, keyring, bus=bus,
                default_ttl=_whole(cfg.approval_default_ttl), max_ttl=_whole(cfg.approval_max_ttl),
                max_mismatches=cfg.approval_max_mismatches,
                retention_seconds=cfg.approval_retention_days * 86400,
                allowed_algorithms=cfg.allowed_algorithms, registry=registry,
            )
            ledger = ledger_for_store(cfg.approval_store, retention_seconds=cfg.approval_retention_days * 86400)
        except BaseException:
            for part in (ledger, store, bus):
                if part is not None:
                    with contextlib.suppress(Exception):
                        part.close()
            raise
        return cls(cfg, engine=engine, approvals=approvals, ledger=ledger, bus=bus, registry=registry,
                   sweep_interval=sweep_interval)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Governance:
        """Start the event relay and the approval sweeper threads (idempotent)."""
        self.bus.start()
        if self._sweeper is None:
            self._sweeper = ApprovalSweeper(self.approvals, self.sweep_interval).start()
        return self

    async def astart(self) -> Governance:
        """Start delivery on the running loop (async sinks such as a host EventStream run on it)
        and the sweeper as a task of that loop."""
        await self.bus.start_async()
        if self._sweep_task is None:
            from .approvals import run_sweeper

            self._sweep_task = asyncio.get_running_loop().create_task(
                run_sweeper(self.approvals, self.sweep_interval), name="irgov-approval-sweeper")
        return self

    def add_sink(self, sink: Any) -> None:
        self.bus.add_sink(sink)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every sink has every event; True when nothing is pending."""
        return self.bus.flush(timeout)

    async def aflush(self, timeout: float = 5.0) -> bool:
        return await self.bus.aflush(timeout)

    def close(self) -> None:
        """Stop the sweeper and the relay and release the store, the ledger and the outbox.
        Undelivered events stay in the outbox for the next start."""
        if self._closed:
            return
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        if self._sweep_task is not None:
            self._sweep_task.cancel()
            self._sweep_task = None
        for name, part in (("bus", self.bus), ("approval store", self.approvals.store), ("ledger", self.ledger)):
            try:
                part.close()
            except Exception as exc:  # closing is best effort; each part is tried
                logger.warning("closing the %s failed: %s", name, exc)

    async def astop(self) -> None:
        """Stop what `astart` started on this loop (the sweeper task and delivery), keeping the
        stores open: a host's lifespan can end and start again with the same kernel."""
        task = self._sweep_task
        self._sweep_task = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.bus.stop_async()

    async def aclose(self) -> None:
        await self.astop()
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Governance:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Governance:
        return await self.astart()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- validation --------------------------------------------------------------------------

    def validate(self, ir: IR | Mapping[str, Any] | bytes | str, *, submitted_by: str | None = None) -> Decision:
        """Decide on one IR (never raises) and publish its `ir.validated_*` event. The decision
        is recorded in the ledger, with `submitted_by`, so it can later be approved."""
        decision = self.engine.evaluate(ir, bus=self.bus)
        if decision.tenant_id and decision.ir_hash:
            entry = DecisionEntry(decision.tenant_id, decision.ir_hash, decision.status, decision.risk_tier,
                                  decision.request_id, _now_us())
            try:
                self.ledger.record_decision(entry, submitted_by)
            except Exception as exc:  # the decision stands; approving it will be refused instead
                logger.error("cannot record the decision on ir %s of tenant %s: %s",
                             decision.ir_hash, decision.tenant_id, exc)
        return decision

    # -- approvals ---------------------------------------------------------------------------

    def _view(self, request: ApprovalRequest) -> ApprovalRequestView:
        approval = None
        if request.approval_id is not None:
            approval = self.approvals.get(request.approval_id, request.tenant_id)
        return ApprovalRequestView(request, approval)

    def _request_of(self, request_id: str, tenant_id: str) -> ApprovalRequest:
        if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
            raise NotFoundError(f"approval request `{request_id}` does not exist")
        request = self.ledger.get_request(request_id)
        # Another tenant's request gets the same answer as a missing one.
        if request is None or request.tenant_id != tenant_id:
            raise NotFoundError(f"approval request `{request_id}` does not exist")
        return request

    def _escalated(self, tenant_id: str, ir_hash: str) -> DecisionEntry:
        entry = self.ledger.get_decision(tenant_id, ir_hash)
        if entry is None:
            raise NotEscalatedError(f"no decision on ir `{ir_hash}` for tenant `{tenant_id}`: validate the ir first")
        if entry.status != Status.ESCALATE:
            raise NotEscalatedError(
                f"ir `{ir_hash}` of tenant `{tenant_id}` was decided `{entry.status}`: "
                "only an ESCALATE decision can be approved")
        return entry

    def request_approval(self, decision: Decision | str, requested_by: str, *, tenant_id: str | None = None,
                         reason: str | None = None) -> ApprovalRequestView:
        """Ask a human to approve an ESCALATE decision this kernel made. `decision` is the
        `Decision`, or its `ir_hash` together with `tenant_id`. The ledger, not the object
        passed in, says what was decided."""
        tenant: str | None = decision.tenant_id if isinstance(decision, Decision) else tenant_id
        ir_hash: str = decision.ir_hash if isinstance(decision, Decision) else decision
        _check_text("tenant_id", tenant, max_length=100)
        _check_text("ir_hash", ir_hash, max_length=200)
        _check_text("requested_by", requested_by, max_length=MAX_PRINCIPAL_LENGTH)
        _check_text("reason", reason, max_length=MAX_REASON_LENGTH, optional=True)
        assert isinstance(tenant, str) and isinstance(ir_hash, str)
        entry = self._escalated(tenant, ir_hash)
        request = ApprovalRequest(new_request_id(), tenant, ir_hash, requested_by, entry.risk_tier, _now_us(),
                                  reason=reason)
        self.ledger.insert_request(request)
        logger.info("approval request %s for ir %s of tenant %s by %s", request.request_id, ir_hash, tenant,
                    requested_by)
        return ApprovalRequestView(request, None)

    def grant(self, request_id: str, approver: str, tenant_id: str, *, ttl_seconds: int | float | None = None,
              reason: str | None = None) -> Grant:
        """Approve a request: creates the approval and returns its token, once. With separation
        of duties, whoever submitted the IR or requested the approval cannot grant it."""
        _check_text("approver", approver, max_length=MAX_PRINCIPAL_LENGTH)
        _check_text("reason", reason, max_length=MAX_REASON_LENGTH, optional=True)
        request = self._request_of(request_id, tenant_id)
        if request.state is not RequestState.REQUESTED:
            raise ConflictError(f"approval request `{request_id}` is already {request.state.value}")
        if self.config.separation_of_duties:
            if approver == request.requested_by:
                raise SeparationOfDutiesError(
                    f"`{approver}` requested approval request `{request_id}` and cannot grant it")
            if approver in self.ledger.submitters(request.tenant_id, request.ir_hash):
                raise SeparationOfDutiesError(
                    f"`{approver}` submitted the ir of approval request `{request_id}` and cannot grant it")
        self._escalated(request.tenant_id, request.ir_hash)
        claimed = self.ledger.transition(request_id, tenant_id=tenant_id, from_states=(RequestState.REQUESTED,),
                                         changes={"state": RequestState.GRANTED, "granted_by": approver,
                                                  "granted_us": _now_us()})
        if claimed is None:
            raise ConflictError(f"approval request `{request_id}` was granted or revoked meanwhile")
        try:
            approval, token = self.approvals.create(
                request.tenant_id, request.ir_hash, ttl_seconds=ttl_seconds, created_by=approver,
                reason=reason if reason is not None else request.reason)
        except BaseException:
            # Nothing was minted: give the request back so a valid grant can follow.
            self.ledger.transition(request_id, tenant_id=tenant_id, from_states=(RequestState.GRANTED,),
                                   changes={"state": RequestState.REQUESTED, "granted_by": None,
                                            "granted_us": None})
            raise
        linked = self.ledger.transition(request_id, tenant_id=tenant_id, from_states=(RequestState.GRANTED,),
                                        changes={"approval_id": approval.approval_id})
        logger.info("approval request %s granted by %s as approval %s", request_id, approver,
                    approval.approval_id)
        return Grant(ApprovalRequestView(linked or claimed, approval), token)

    def approve(self, request_id: str, approver: str, tenant_id: str, *, ttl_seconds: int | float | None = None,
                reason: str | None = None) -> Grant:
        """The approver's verb for `grant`: same checks, same single token."""
        return self.grant(request_id, approver, tenant_id, ttl_seconds=ttl_seconds, reason=reason)

    def consume(self, token: str, *, tenant_id: str, ir_hash: str, consumed_by: str | None = None) -> ConsumeResult:
        """Consume an approval token for exactly this tenant and IR hash (once, ever)."""
        return self.approvals.consume(token, tenant_id=tenant_id, ir_hash=ir_hash, consumed_by=consumed_by)

    def request_tenant(self, request_id: str) -> str | None:
        """The tenant of an approval request, or None: lets a caller entitled to several tenants
        find which one to check before asking for the request itself."""
        if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
            return None
        request = self.ledger.get_request(request_id)
        return None if request is None else request.tenant_id

    async def arequest_tenant(self, request_id: str) -> str | None:
        return await self._run(self.request_tenant, request_id)

    def get_request(self, request_id: str, tenant_id: str) -> ApprovalRequestView:
        return self._view(self._request_of(request_id, tenant_id))

    def list_requests(self, tenant_id: str, *, status: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> tuple[list[ApprovalRequestView], str | None]:
        """Requests of `tenant_id`, newest first. With `status`, a page may hold fewer than
        `limit` items while more follow: continue with the cursor until it is None."""
        _check_text("tenant_id", tenant_id, max_length=100)
        if status is not None and status not in REQUEST_STATUSES:
            raise ApprovalError(f"unknown status `{status}`: use " + ", ".join(f"`{s}`" for s in REQUEST_STATUSES))
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ApprovalError(f"`limit` must be an integer from 1 to {MAX_PAGE}, not `{limit!r}`")
        state = {"requested": RequestState.REQUESTED}.get(status or "")
        if status in ("pending", "consumed", "expired"):
            state = RequestState.GRANTED
        try:
            # `revoked` also covers approvals revoked by too many mismatches: filter after reading.
            requests, next_cursor = self.ledger.list_requests(tenant_id, state=state, limit=limit, cursor=cursor)
        except ValueError as exc:
            raise ApprovalError(str(exc)) from None
        views = [self._view(r) for r in requests]
        if status is not None:
            views = [v for v in views if v.status == status]
        return views, next_cursor

    def revoke(self, request_id: str, tenant_id: str, *, by: str, reason: str | None = None) -> ApprovalRequestView:
        """Withdraw a request, and revoke its approval when one was granted and is still pending."""
        _check_text("by", by, max_length=MAX_PRINCIPAL_LENGTH)
        _check_text("reason", reason, max_length=MAX_REASON_LENGTH, optional=True)
        request = self._request_of(request_id, tenant_id)
        if request.state is RequestState.REVOKED:
            return self._view(request)
        if request.approval_id is not None:
            approval = self.approvals.revoke(request.approval_id, tenant_id, by=by, reason=reason)
            if approval is not None and approval.status is not ApprovalStatus.REVOKED:
                raise ConflictError(f"approval request `{request_id}` cannot be revoked: its approval is "
                                    f"already {approval.status.value}")
        after = self.ledger.transition(request_id, tenant_id=tenant_id,
                                       from_states=(RequestState.REQUESTED, RequestState.GRANTED),
                                       changes={"state": RequestState.REVOKED, "revoked_by": by,
                                                "revoked_us": _now_us(), "revoke_reason": reason})
        logger.info("approval request %s revoked by %s", request_id, by)
        return self._view(after or self._request_of(request_id, tenant_id))

    # -- diff audit and the gate -------------------------------------------------------------

    def _parse(self, ir: IR | Mapping[str, Any] | bytes | str) -> IR:
        if isinstance(ir, IR):
            return ir
        if isinstance(ir, bytes | str):
            return load_ir(ir, limits=self.engine.limits)
        return parse_ir(ir, limits=self.engine.limits)

    def audit(self, ir: IR | Mapping[str, Any], dag_nodes: Sequence[Any] | Mapping[str, Any]) -> DiffAuditResult:
        """Is the DAG exactly this IR? Publishes `ir.dag_diff_ok` or `ir.dag_diff_failed`.
        Raises `IRInputError` for an IR that is not valid (nothing to compare with)."""
        nodes = parse_dag_nodes(dag_nodes) if isinstance(dag_nodes, Mapping) else dag_nodes
        return run_audit(self._parse(ir), nodes, algorithm=self.config.hash_algorithm,
                         allowed_algorithms=self.config.allowed_algorithms, registry=self.registry, bus=self.bus)

    def authorize_execution(self, ir: IR | Mapping[str, Any] | bytes | str,
                            dag_nodes: Sequence[Any] | Mapping[str, Any],
                            approval_token: str | None = None, *, executed_by: str | None = None) -> Clearance:
        """The executor's one call: validate, audit the DAG, and consume the approval when the
        decision requires one. Allowed only when all of them say yes; never raises.

        The approval is consumed last, so a refused DAG does not burn a human's approval."""
        try:
            return self._authorize(ir, dag_nodes, approval_token, executed_by)
        except StoreError as exc:
            # The caller may be a remote client: the store's address stays in the server log.
            logger.error("authorizing an execution failed: %s", exc)
            reason = "authorization failed: the approval store or the ledger does not answer"
        except IrgovError as exc:
            reason = f"authorization failed: {exc}"
        except Exception:
            logger.exception("authorizing an execution failed")
            reason = "authorization failed: an unexpected error, described in the server log"
        return Clearance(False, None, None, None, (reason,))

    def _authorize(self, source: IR | Mapping[str, Any] | bytes | str, dag_nodes: Sequence[Any] | Mapping[str, Any],
                   approval_token: str | None, executed_by: str | None) -> Clearance:
        decision = self.validate(source, submitted_by=None)
        reasons: list[str] = []
        tenant = decision.tenant_id or None
        digest = decision.ir_hash or None
        if decision.status == Status.REJECT:
            codes = [f"{v.code}: {v.message}" for v in decision.enforced_violations]
            reasons.append("the ir is rejected: " + ("; ".join(codes) if codes else "no reason given"))
        elif decision.status not in (Status.PASS, Status.ESCALATE):
            reasons.append(f"unknown decision status `{decision.status}`")
        result: DiffAuditResult | None = None
        try:
            ir = self._parse(source)
        except (IRInputError, ValueError) as exc:
            reasons.append(f"the dag cannot be audited: the ir is not valid: {exc}")
        else:
            try:
                result = self.audit(ir, dag_nodes)
            except IrgovError as exc:
                reasons.append(f"the dag cannot be audited: {exc}")
            else:
                if not result.success:
                    reasons.extend(f"dag: {p}" for p in result.problems())
        required = decision.status == Status.ESCALATE
        consumed: ConsumeResult | None = None
        if required:
            if approval_token is None:
                reasons.append("the ir needs an approval and no approval token was given")
            elif reasons:
                reasons.append("the approval token was not consumed because the execution is refused")
            else:
                assert tenant is not None and digest is not None
                consumed = self.approvals.consume(approval_token, tenant_id=tenant, ir_hash=digest,
                                                  consumed_by=executed_by)
                if not consumed.success:
                    reason = consumed.reason.value if consumed.reason is not None else "unknown"
                    reasons.append(f"the approval token was refused: `{reason}`")
        return Clearance(not reasons, tenant, digest, decision.status, tuple(reasons), decision, consumed, result,
                         required)

    # -- information -------------------------------------------------------------------------

    def packs(self) -> list[dict[str, Any]]:
        return [{"name": p.name, "version": p.version, "digest": p.digest, "description": p.description}
                for p in self.engine.packs]

    def health(self) -> dict[str, Any]:
        """Whether the ledger and the store answer; never raises."""
        checks: dict[str, str] = {}
        try:
            self.ledger.get_decision("irgov-health", "sha256:" + "0" * 64)
            checks["ledger"] = "ok"
        except Exception as exc:
            checks["ledger"] = f"error: {type(exc).__name__}"
        try:
            self.approvals.store.get("appr_health")
            checks["approval_store"] = "ok"
        except Exception as exc:
            checks["approval_store"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return {"status": "ok" if ok else "degraded", "version": __version__, "engine": self.engine.engine_name,
                "checks": checks}

    # -- async twins -------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def avalidate(self, ir: IR | Mapping[str, Any] | bytes | str, *, submitted_by: str | None = None) -> Decision:
        return await self._run(self.validate, ir, submitted_by=submitted_by)

    async def arequest_approval(self, decision: Decision | str, requested_by: str, *, tenant_id: str | None = None,
                                reason: str | None = None) -> ApprovalRequestView:
        return await self._run(self.request_approval, decision, requested_by, tenant_id=tenant_id, reason=reason)

    async def agrant(self, request_id: str, approver: str, tenant_id: str, *,
                     ttl_seconds: int | float | None = None, reason: str | None = None) -> Grant:
        return await self._run(self.grant, request_id, approver, tenant_id, ttl_seconds=ttl_seconds, reason=reason)

    async def aapprove(self, request_id: str, approver: str, tenant_id: str, *,
                       ttl_seconds: int | float | None = None, reason: str | None = None) -> Grant:
        return await self._run(self.approve, request_id, approver, tenant_id, ttl_seconds=ttl_seconds, reason=reason)

    async def aconsume(self, token: str, *, tenant_id: str, ir_hash: str,
                       consumed_by: str | None = None) -> ConsumeResult:
        return await self._run(self.consume, token, tenant_id=tenant_id, ir_hash=ir_hash, consumed_by=consumed_by)

    async def aget_request(self, request_id: str, tenant_id: str) -> ApprovalRequestView:
        return await self._run(self.get_request, request_id, tenant_id)

    async def alist_requests(self, tenant_id: str, *, status: str | None = None, limit: int = 50,
                             cursor: str | None = None) -> tuple[list[ApprovalRequestView], str | None]:
        return await self._run(self.list_requests, tenant_id, status=status, limit=limit, cursor=cursor)

    async def arevoke(self, request_id: str, tenant_id: str, *, by: str,
                      reason: str | None = None) -> ApprovalRequestView:
        return await self._run(self.revoke, request_id, tenant_id, by=by, reason=reason)

    async def aaudit(self, ir: IR | Mapping[str, Any], dag_nodes: Sequence[Any] | Mapping[str, Any]) -> DiffAuditResult:
        return await self._run(self.audit, ir, dag_nodes)

    async def aauthorize_execution(self, ir: IR | Mapping[str, Any] | bytes | str,
                                   dag_nodes: Sequence[Any] | Mapping[str, Any], approval_token: str | None = None,
                                   *, executed_by: str | None = None) -> Clearance:
        return await self._run(self.authorize_execution, ir, dag_nodes, approval_token, executed_by=executed_by)

    async def ahealth(self) -> dict[str, Any]:
        return await self._run(self.health)


def _whole(seconds: float) -> int | float:
    """Configuration numbers are floats; the approval service keeps whole seconds as ints."""
    return int(seconds) if float(seconds).is_integer() else seconds
