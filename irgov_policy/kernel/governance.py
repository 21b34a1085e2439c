"""`Governance`: the one object a host or an executor talks to.

It holds the parts built from one configuration (`build.py`): the policy engine, the approval
service, the diff audit and the event bus, and a ledger of its own decisions. It adds the human
step (`requests.py`) and the executor's gate, `authorize_execution`, which validates, audits the
DAG and consumes the approval when one is needed, refusing at the first doubt.

Every method has an async twin (`a` prefix) that runs the sync one in a worker thread, so an
asyncio host never blocks its loop on SQLite, Redis or CEL; a parity test holds each twin to its
sync signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from .._version import __version__
from ..approvals import ApprovalService, ApprovalSweeper, ConsumeResult
from ..approvals.ledger_records import DecisionEntry, Ledger
from ..approvals.limits import FailureLimiter, consume_within_limits, replay_within_limits
from ..approvals.sweeper import SWEEPER_LEASE
from ..audit import DiffAuditResult
from ..audit import audit as run_audit
from ..config import GovernanceConfig
from ..errors import (
    IdempotencyConflictError,
    IrgovError,
    IRInputError,
    RateLimitedError,
    StoreError,
    StoreTimeoutError,
)
from ..events import EventBus, format_timestamp
from ..hashing import HashRegistry, ir_hash
from ..model import IR, parse_dag_nodes
from ..observability import metrics, tracing
from ..policy.active import ReloadResult
from ..policy.decision import Decision, Status
from ..policy.evaluator import PolicyEngine, publish_decision
from ..policy.inventory import packs_in_force
from ..storage.leases import Lease, lease_for
from .build import build_parts, resolve_config
from .gate_replay import dag_fingerprint, record_answer, replayed_answer
from .health import HealthProbe
from .packs import PackLifecycle
from .request_details import DEFAULT_STEPS_PAGE, RequestDetails, decision_snapshot, summary_of
from .requests import ApprovalRequests, now_us
from .views import ApprovalRequestView, Clearance, Grant

__all__ = ["DEFAULT_SWEEP_INTERVAL", "Governance"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SWEEP_INTERVAL = 60.0


class Governance(ApprovalRequests):
    """Validation, approvals, diff audit and events behind one facade. Build it with
    `Governance.from_config()`; close it (or use it as a context manager) when done."""

    def __init__(self, config: GovernanceConfig, *, engine: PolicyEngine, approvals: ApprovalService,
                 ledger: Ledger, bus: EventBus, registry: HashRegistry | None = None,
                 sweep_interval: float = DEFAULT_SWEEP_INTERVAL, lifecycle: PackLifecycle | None = None,
                 sweeper_lease: Lease | None = None) -> None:
        self.config = config
        self.pack_lifecycle = lifecycle if lifecycle is not None else PackLifecycle(config, engine, bus=bus)
        self.approvals = approvals
        self.ledger = ledger
        self.bus = bus
        self.registry = registry
        self.sweep_interval = sweep_interval
        # Workers and hosts sharing the store elect one sweeper; without a lease this one sweeps.
        self.sweeper_lease = sweeper_lease
        self._sweeper: ApprovalSweeper | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self._closed = False
        self.health_probe = HealthProbe(ledger, approvals.store)
        self.consume_limiter = FailureLimiter(config.consume_failure_limit, config.consume_failure_window)

    @classmethod
    def from_config(cls, config: GovernanceConfig | str | os.PathLike[str] | None = None, *,
                    environ: Mapping[str, str] | None = None, sinks: Sequence[Any] = (),
                    sweep_interval: float = DEFAULT_SWEEP_INTERVAL, **overrides: Any) -> Governance:
        """Build from a `GovernanceConfig`, a configuration file, or (None) the embedded defaults
        plus `IRGOV_*` variables. `sinks` are extra event sinks (objects) besides `event_sinks`."""
        parts = build_parts(resolve_config(config, environ=environ, **overrides), sinks=sinks)
        try:
            lifecycle = PackLifecycle(parts.config, parts.engine, bus=parts.bus)
            lease = lease_for(parts.config.approval_store, SWEEPER_LEASE)
        except BaseException:
            for part in (parts.approvals.store, parts.bus):
                with contextlib.suppress(Exception):
                    part.close()
            raise
        return cls(parts.config, engine=parts.engine, approvals=parts.approvals, ledger=parts.ledger,
                   bus=parts.bus, registry=parts.registry, sweep_interval=sweep_interval, lifecycle=lifecycle,
                   sweeper_lease=lease)

    @property
    def engine(self) -> PolicyEngine:
        """The policy engine of the pack set in force (a reload replaces it; take it once per use)."""
        return self.pack_lifecycle.engine

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Governance:
        """Start the event relay, the approval sweeper and the pack watcher threads (idempotent)."""
        self.bus.start()
        if self._sweeper is None:
            self._sweeper = ApprovalSweeper(self.approvals, self.sweep_interval, lease=self.sweeper_lease).start()
        self.pack_lifecycle.start_watching()
        return self

    async def astart(self) -> Governance:
        """Start delivery on the running loop (async sinks such as a host EventStream run on it)
        and the sweeper as a task of that loop."""
        await self.bus.start_async()
        if self._sweep_task is None:
            from ..approvals import run_sweeper

            self._sweep_task = asyncio.get_running_loop().create_task(
                run_sweeper(self.approvals, self.sweep_interval, lease=self.sweeper_lease),
                name="irgov-approval-sweeper")
        self.pack_lifecycle.start_watching()
        return self

    def add_sink(self, sink: Any) -> None:
        self.bus.add_sink(sink)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every sink has every event; True when nothing is pending."""
        return self.bus.flush(timeout)

    async def aflush(self, timeout: float = 5.0) -> bool:
        return await self.bus.aflush(timeout)

    def close(self) -> None:
        """Stop the sweeper and the relay and release the store (with its ledger) and the outbox.
        Undelivered events stay in the outbox for the next start."""
        if self._closed:
            return
        self._closed = True
        self.health_probe.close()
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
        if self._sweep_task is not None:
            self._sweep_task.cancel()
            self._sweep_task = None
        parts: list[tuple[str, Any]] = [("pack lifecycle", self.pack_lifecycle), ("bus", self.bus),
                                        ("approval store", self.approvals.store)]
        if self.sweeper_lease is not None:
            parts.insert(0, ("sweeper lease", self.sweeper_lease))
        for name, part in parts:
            try:
                part.close()
            except Exception as exc:  # closing is best effort; each part is tried
                logger.warning("closing the %s failed: %s", name, exc)

    async def astop(self) -> None:
        """Stop what `astart` started on this loop (the sweeper task and delivery), keeping the
        stores open: a host's lifespan can end and start again with the same kernel."""
        await asyncio.to_thread(self.pack_lifecycle.stop_watching)
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
        return self._validate(ir, submitted_by=submitted_by, repeat_events=True)

    def _validate(self, ir: IR | Mapping[str, Any] | bytes | str, *, submitted_by: str | None,
                  repeat_events: bool) -> Decision:
        """`validate`; without `repeat_events`, the `ir.validated_*` event is published only
        when the ledger does not already hold the same decision on this IR (the execution gate
        re-decides an IR it was shown before, and its own events are the audit and the consume)."""
        # One wait at the end for the decision's event (durable before this returns when critical):
        # its commit runs on the outbox's writer while the ledger entry is built and recorded.
        with self.bus.batch(critical_only=True):
            return self._decide_and_record(ir, submitted_by=submitted_by, repeat_events=repeat_events)

    def _decide_and_record(self, ir: IR | Mapping[str, Any] | bytes | str, *, submitted_by: str | None,
                           repeat_events: bool) -> Decision:
        decision = self.pack_lifecycle.decide(ir, bus=self.bus if repeat_events else None, submitted_by=submitted_by)
        if not repeat_events:
            known = None
            if decision.tenant_id and decision.ir_hash:
                try:
                    known = self.ledger.get_decision(decision.tenant_id, decision.ir_hash)
                except Exception as exc:  # an unreadable ledger: publish rather than lose the event
                    logger.error("cannot read the decision on ir %s: %s", decision.ir_hash, exc)
            if known is None or known.status != decision.status:
                publish_decision(decision, self.bus)
        if decision.tenant_id and decision.ir_hash:
            entry = self._entry(decision, ir)
            try:
                if "BUDGET_EXCEEDED" in decision.violation_codes() and \
                        self.ledger.get_decision(decision.tenant_id, decision.ir_hash) is not None:
                    # A budget REJECT says the evaluation stopped, not what the IR is: it must not
                    # replace a completed decision on the same IR (its approval would be lost).
                    logger.info("kept the recorded decision on ir %s: this evaluation ran out of budget",
                                decision.ir_hash)
                    return decision
                self.ledger.record_decision(entry, submitted_by)
            except Exception as exc:  # the decision stands; approving it will be refused instead
                logger.error("cannot record the decision on ir %s of tenant %s: %s",
                             decision.ir_hash, decision.tenant_id, exc)
        return decision

    def _entry(self, decision: Decision, source: IR | Mapping[str, Any] | bytes | str) -> DecisionEntry:
        """The ledger's entry for `decision`; an ESCALATE one keeps what a human needs to judge it
        (`request_details`), from the IR parsed again if it came as text: only escalations pay."""
        entry = DecisionEntry(decision.tenant_id, decision.ir_hash, decision.status, decision.risk_tier,
                              decision.request_id, now_us(), decision.step_count)
        if decision.status != Status.ESCALATE:
            return entry
        try:
            ir = source if isinstance(source, IR) else self.engine.parse(source)
            return replace(entry, intent_summary=summary_of(ir.intent_summary),
                           snapshot=decision_snapshot(decision, ir))
        except Exception as exc:  # the decision stands; its request shows it without details
            logger.error("cannot keep the details of the decision on ir %s: %s", decision.ir_hash, exc)
            return entry

    # -- approvals (the request workflow is `ApprovalRequests`) ------------------------------

    def consume(self, token: str, *, tenant_id: str, ir_hash: str, consumed_by: str | None = None,
                idempotency_key: str | None = None) -> ConsumeResult:
        """Consume an approval token for exactly this tenant and IR hash (once, ever). A retry with
        the same `idempotency_key`, token and caller gets the first success again
        (`ApprovalService.consume`); the key reused otherwise raises `IdempotencyConflictError`."""
        return self._consume(token, tenant_id=tenant_id, ir_hash=ir_hash, consumed_by=consumed_by,
                             idempotency_key=idempotency_key)

    def _consume(self, token: str, *, tenant_id: str, ir_hash: str, consumed_by: str | None,
                 idempotency_key: str | None,
                 answer: Callable[[ConsumeResult], str | None] | None = None) -> ConsumeResult:
        # Every consume, direct or through the gate, counts against the failed-consume limits.
        with tracing.span("consume", {"irgov.tenant_id": tenant_id, "irgov.ir_hash": ir_hash}) as span:
            try:
                result = consume_within_limits(self.consume_limiter, self.approvals, self.bus, token,
                                               tenant_id=tenant_id, ir_hash=ir_hash, consumed_by=consumed_by,
                                               idempotency_key=idempotency_key, answer=answer)
            except RateLimitedError:
                metrics.consume_failure("rate_limited")
                tracing.set_attributes(span, success=False, reason="rate_limited")
                raise
            reason = None if result.reason is None else result.reason.value
            tracing.set_attributes(span, success=result.success, reason=reason)
        if result.success:
            metrics.approval_state("consumed")
        else:
            metrics.consume_failure(reason or "unknown")
        return result

    # -- diff audit and the gate -------------------------------------------------------------

    def audit(self, ir: IR | Mapping[str, Any], dag_nodes: Sequence[Any] | Mapping[str, Any], *,
              require_content: bool = False) -> DiffAuditResult:
        """Is the DAG exactly this IR, and does every node run what it claims? Publishes
        `ir.dag_diff_ok` or `ir.dag_diff_failed`. `require_content` refuses nodes that carry only
        a claimed hash. Raises `IRInputError` for an IR that is not valid (nothing to compare with)."""
        return self._audit(self.engine.parse(ir), dag_nodes, None, require_content=require_content)

    def _audit(self, ir: IR, dag_nodes: Sequence[Any] | Mapping[str, Any], ir_digest: str | None, *,
               require_content: bool) -> DiffAuditResult:
        with tracing.span("audit", {"irgov.tenant_id": ir.tenant_id}) as span:
            nodes = parse_dag_nodes(dag_nodes) if isinstance(dag_nodes, Mapping) else dag_nodes
            result = run_audit(ir, nodes, algorithm=self.config.hash_algorithm,
                               allowed_algorithms=self.config.allowed_algorithms, registry=self.registry,
                               require_content=require_content, bus=self.bus, ir_digest=ir_digest)
            tracing.set_attributes(span, success=result.success)
        return result

    def authorize_execution(self, ir: IR | Mapping[str, Any] | bytes | str,
                            dag_nodes: Sequence[Any] | Mapping[str, Any],
                            approval_token: str | None = None, *, executed_by: str | None = None,
                            idempotency_key: str | None = None) -> Clearance:
        """The executor's one call: validate, audit the DAG, and consume the approval when the
        decision requires one. Allowed only when all of them say yes; never raises, except
        `RateLimitedError` when the tenant or the caller is over the failed-consume limit,
        `StoreTimeoutError` when the approval store did not answer in time (the consume may or
        may not have happened: retry, with `idempotency_key` to be answered as the first time)
        and `IdempotencyConflictError` for a key used by another consume (`consume`) or, here,
        for another DAG.

        With `idempotency_key`, the answer of a call that consumes is recorded with the consume,
        and a retry (same key, token, caller, IR and DAG) returns it unchanged without judging
        anything or publishing any event (`gate_replay`, docs/approvals.md "Retrying the gate").

        The approval is consumed last, so a refused DAG does not burn a human's approval."""
        try:
            return self._authorize(ir, dag_nodes, approval_token, executed_by, idempotency_key)
        except (RateLimitedError, StoreTimeoutError, IdempotencyConflictError):
            raise  # the caller must back off or retry: not a verdict on this execution
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
                   approval_token: str | None, executed_by: str | None, idempotency_key: str | None) -> Clearance:
        # Parsed once: the decision and the audit judge the same IR, and the audit reuses the
        # decision's hash. An IR that does not parse is judged from its source (a REJECT).
        engine = self.engine
        parsed: IR | None = None
        unreadable: Exception | None = None
        try:
            parsed = engine.parse(source)
        except (IRInputError, ValueError) as exc:
            unreadable = exc
        if parsed is not None and approval_token is not None and idempotency_key is not None:
            replayed = self._replayed(parsed, dag_nodes, approval_token, executed_by, idempotency_key)
            if replayed is not None:
                return replayed
        decision = self._validate(source if parsed is None else parsed, submitted_by=executed_by,
                                  repeat_events=False)
        reasons: list[str] = []
        tenant = decision.tenant_id or None
        digest = decision.ir_hash or None
        if decision.status == Status.REJECT:
            codes = [f"{v.code}: {v.message}" for v in decision.enforced_violations]
            reasons.append("the ir is rejected: " + ("; ".join(codes) if codes else "no reason given"))
        elif decision.status not in (Status.PASS, Status.ESCALATE):
            reasons.append(f"unknown decision status `{decision.status}`")
        result: DiffAuditResult | None = None
        if parsed is None:
            reasons.append(f"the dag cannot be audited: the ir is not valid: {unreadable}")
        else:
            try:
                same_hash = engine.hash_algorithm == self.config.hash_algorithm and decision.ir_hash
                result = self._audit(parsed, dag_nodes, decision.ir_hash if same_hash else None,
                                     require_content=self.config.require_node_content)
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
                # With a key, the answer is built before the consume (with the success it will
                # have) and committed with it: a retry finds it whole or finds no consume at all.
                fingerprint = None if idempotency_key is None else dag_fingerprint(dag_nodes)
                answered: list[tuple[Clearance, str | None]] = []

                def answer(success: ConsumeResult) -> str | None:
                    clearance = Clearance(True, tenant, digest, decision.status, (), decision, success, result, True)
                    text = None if fingerprint is None else record_answer(fingerprint, clearance)
                    answered.append((clearance, text))
                    return text

                consumed = self._consume(approval_token, tenant_id=tenant, ir_hash=digest, consumed_by=executed_by,
                                         idempotency_key=idempotency_key, answer=answer)
                if consumed.success and answered and answered[-1][0].approval == consumed:
                    assert idempotency_key is not None
                    return self._answer_in_store(tenant, idempotency_key, *answered[-1], fingerprint)
                if not consumed.success:
                    reason = consumed.reason.value if consumed.reason is not None else "unknown"
                    reasons.append(f"the approval token was refused: `{reason}`")
        return Clearance(not reasons, tenant, digest, decision.status, tuple(reasons), decision, consumed, result,
                         required)

    def _replayed(self, ir: IR, dag_nodes: Sequence[Any] | Mapping[str, Any], approval_token: str,
                  executed_by: str | None, idempotency_key: str) -> Clearance | None:
        """The recorded first answer of the gate when this call is its retry; None to judge the
        call (the key bound to nothing, or to a consume that recorded no gate answer)."""
        digest = ir_hash(ir, self.engine.hash_algorithm)
        found = replay_within_limits(self.consume_limiter, self.approvals, self.bus, approval_token,
                                     tenant_id=ir.tenant_id, ir_hash=digest, consumed_by=executed_by,
                                     idempotency_key=idempotency_key)
        if found is None:
            return None
        consumed, text = found
        if text is None:
            # Bound by `POST /approvals/consume` or by a version that kept no gate answer: the
            # decision and the audit run again (with their events, as a first judgement), and
            # the consume replays; nothing is allowed that this call did not audit.
            logger.info("approval %s: idempotency key bound to a consume without a gate answer: judged again",
                        consumed.approval_id)
            return None
        logger.info("approval %s: execution gate answer replayed for its idempotency key", consumed.approval_id)
        return replayed_answer(text, dag_fingerprint(dag_nodes), key=idempotency_key,
                               approval_id=consumed.approval_id)

    def _answer_in_store(self, tenant_id: str, idempotency_key: str, clearance: Clearance, text: str | None,
                         fingerprint: str | None) -> Clearance:
        """After a keyed consume succeeded: the answer the store kept for the key. It is this
        call's own unless a concurrent attempt with the same key committed first (this consume
        then replayed that one), in which case both callers get the one recorded answer."""
        try:
            bound = self.approvals.store.bound_consume(tenant_id, idempotency_key)
        except StoreError as exc:  # the consume stands; this call's answer is as true
            logger.warning("cannot read back the answer kept for an idempotency key: %s", exc)
            return clearance
        if bound is None or bound[1] is None or bound[1] == text:
            return clearance
        return replayed_answer(bound[1], fingerprint, key=idempotency_key, approval_id=bound[0].approval_id)

    # -- information -------------------------------------------------------------------------

    def packs(self) -> list[dict[str, Any]]:
        """The packs in force (`GET /packs`, and `irgov packs` for the same configuration)."""
        return packs_in_force(self.engine)

    def pack_status(self) -> dict[str, Any]:
        """The pack set in force (`digest`, `loaded_at`, `packs`), its reloads (`last_reload`,
        `last_reload_error`), the shadow set and the decision log."""
        return self.pack_lifecycle.status()

    def reload_packs(self, *, by: str, trigger: str = "call") -> ReloadResult:
        """Load, lint and test the packs as they now are and put them in force; on failure the
        set in force stays and the result (and `pack_status()`) says why. Never raises for a
        bad pack set."""
        return self.pack_lifecycle.reload(by=by, trigger=trigger)

    async def areload_packs(self, *, by: str, trigger: str = "call") -> ReloadResult:
        return await self._run(self.reload_packs, by=by, trigger=trigger)

    def health(self) -> dict[str, Any]:
        """Whether the ledger and the store answer; never raises."""
        return self._health_report(self.health_probe.check())

    def _health_report(self, checks: dict[str, str]) -> dict[str, Any]:
        ok = all(v == "ok" for v in checks.values())
        holder = self.pack_lifecycle.holder
        failed = holder.last_error
        packs = {"digest": holder.active.digest, "loaded_at": format_timestamp(holder.active.loaded_at),
                 "last_reload_error": None if failed is None else failed.error,
                 "last_reload_failed_at": None if failed is None else format_timestamp(failed.at)}
        return {"status": "ok" if ok else "degraded", "version": __version__, "engine": self.engine.engine_name,
                "checks": checks, "packs": packs}

    # -- async twins -------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def avalidate(self, ir: IR | Mapping[str, Any] | bytes | str, *, submitted_by: str | None = None) -> Decision:
        return await self._run(self.validate, ir, submitted_by=submitted_by)

    async def arequest_approval(self, decision: Decision | str, requested_by: str, *, tenant_id: str | None = None,
                                reason: str | None = None) -> ApprovalRequestView:
        return await self._run(self.request_approval, decision, requested_by, tenant_id=tenant_id, reason=reason)

    async def agrant(self, request_id: str, approver: str, tenant_id: str, *,
                     ttl_seconds: int | float | None = None, reason: str | None = None,
                     deliver: str = "response") -> Grant:
        return await self._run(self.grant, request_id, approver, tenant_id, ttl_seconds=ttl_seconds, reason=reason,
                               deliver=deliver)

    async def aclaim_token(self, request_id: str, tenant_id: str, *, by: str) -> Grant:
        return await self._run(self.claim_token, request_id, tenant_id, by=by)

    async def abreak_glass(self, tenant_id: str, ir_hash: str, by: str, reason: str, *,
                           ttl_seconds: int | float | None = None, ir_request_id: str | None = None) -> Grant:
        return await self._run(self.break_glass, tenant_id, ir_hash, by, reason, ttl_seconds=ttl_seconds,
                               ir_request_id=ir_request_id)

    async def aconsume(self, token: str, *, tenant_id: str, ir_hash: str, consumed_by: str | None = None,
                       idempotency_key: str | None = None) -> ConsumeResult:
        return await self._run(self.consume, token, tenant_id=tenant_id, ir_hash=ir_hash, consumed_by=consumed_by,
                               idempotency_key=idempotency_key)

    async def arequest_tenant(self, request_id: str) -> str | None:
        return await self._run(self.request_tenant, request_id)

    async def aget_request(self, request_id: str, tenant_id: str) -> ApprovalRequestView:
        return await self._run(self.get_request, request_id, tenant_id)

    async def arequest_details(self, request_id: str, tenant_id: str, *, steps_offset: int = 0,
                               steps_limit: int = DEFAULT_STEPS_PAGE, viewer: str | None = None) -> RequestDetails:
        return await self._run(self.request_details, request_id, tenant_id, steps_offset=steps_offset,
                               steps_limit=steps_limit, viewer=viewer)

    async def alist_requests(self, tenant_id: str, *, status: str | None = None, limit: int = 50,
                             cursor: str | None = None, tiers: Collection[int] | None = None,
                             sort: str = "newest") -> tuple[list[ApprovalRequestView], str | None]:
        return await self._run(self.list_requests, tenant_id, status=status, limit=limit, cursor=cursor,
                               tiers=tiers, sort=sort)

    async def arevoke(self, request_id: str, tenant_id: str, *, by: str,
                      reason: str | None = None) -> ApprovalRequestView:
        return await self._run(self.revoke, request_id, tenant_id, by=by, reason=reason)

    async def aaudit(self, ir: IR | Mapping[str, Any], dag_nodes: Sequence[Any] | Mapping[str, Any], *,
                     require_content: bool = False) -> DiffAuditResult:
        return await self._run(self.audit, ir, dag_nodes, require_content=require_content)

    async def aauthorize_execution(self, ir: IR | Mapping[str, Any] | bytes | str,
                                   dag_nodes: Sequence[Any] | Mapping[str, Any], approval_token: str | None = None,
                                   *, executed_by: str | None = None, idempotency_key: str | None = None) -> Clearance:
        return await self._run(self.authorize_execution, ir, dag_nodes, approval_token, executed_by=executed_by,
                               idempotency_key=idempotency_key)

    async def ahealth(self) -> dict[str, Any]:
        # Not on the shared pool: a stuck store fills it with waiting requests (see kernel.health).
        return self._health_report(await self.health_probe.acheck())

