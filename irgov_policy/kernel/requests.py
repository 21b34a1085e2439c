"""The approval-request workflow: the human step between an ESCALATE decision and its token.

A submitter asks for an approval of an ESCALATE decision this kernel made (the ledger, not the
caller, says what was decided); an approver grants it and receives the token once; either may
withdraw it. Text is checked by `text_rules`, the same rules the approval service applies, so a
request this workflow accepts can always be granted. With separation of duties, whoever submitted the IR or requested the approval
cannot grant it.
"""

from __future__ import annotations

import contextlib
import logging
import time

from ..approvals import ApprovalService
from ..approvals.ledger_records import ApprovalRequest, DecisionEntry, Ledger, RequestState
from ..approvals.records import validate_ttl
from ..config import GovernanceConfig
from ..errors import (
    ApprovalError,
    ConflictError,
    NotEscalatedError,
    NotFoundError,
    SeparationOfDutiesError,
)
from ..hashing import verify_digest
from ..observability import metrics
from ..policy.decision import Decision, Status
from ..text_rules import (
    MAX_DIGEST_LENGTH,
    MAX_PRINCIPAL_LENGTH,
    MAX_REASON_LENGTH,
    MAX_TENANT_LENGTH,
    REQUEST_ID,
    check_text,
    new_request_id,
)
from .views import ApprovalRequestView, Grant

__all__ = ["BREAK_GLASS", "REQUEST_STATUSES", "ApprovalRequests"]

logger = logging.getLogger(__name__)

#: what `GET /approvals?status=` filters on: the request's own state, or its approval's.
REQUEST_STATUSES = ("requested", "pending", "consumed", "expired", "revoked")
MAX_PAGE = 200
#: how the ledger and the approval name a token minted by `break_glass`.
BREAK_GLASS = "break-glass: "


def now_us() -> int:
    return time.time_ns() // 1000


class ApprovalRequests:
    """The approval-request verbs of `Governance`, over its ledger and approval service. Built
    alone, it serves a face that needs the workflow without the policy engine (a break-glass
    approval must not depend on the packs loading)."""

    config: GovernanceConfig
    approvals: ApprovalService
    ledger: Ledger

    def __init__(self, config: GovernanceConfig, approvals: ApprovalService, ledger: Ledger) -> None:
        self.config = config
        self.approvals = approvals
        self.ledger = ledger

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
        check_text("tenant_id", tenant, max_length=MAX_TENANT_LENGTH)
        check_text("ir_hash", ir_hash, max_length=MAX_DIGEST_LENGTH)
        check_text("requested_by", requested_by, max_length=MAX_PRINCIPAL_LENGTH)
        check_text("reason", reason, max_length=MAX_REASON_LENGTH, optional=True)
        assert isinstance(tenant, str) and isinstance(ir_hash, str)
        entry = self._escalated(tenant, ir_hash)
        request = ApprovalRequest(new_request_id(), tenant, ir_hash, requested_by, entry.risk_tier, now_us(),
                                  reason=reason)
        self.ledger.insert_request(request)
        logger.info("approval request %s for ir %s of tenant %s by %s", request.request_id, ir_hash, tenant,
                    requested_by)
        metrics.approval_state("requested")
        return ApprovalRequestView(request, None)

    def grant(self, request_id: str, approver: str, tenant_id: str, *, ttl_seconds: int | float | None = None,
              reason: str | None = None) -> Grant:
        """Approve a request: creates the approval and returns its token, once. With separation
        of duties, whoever submitted the IR or requested the approval cannot grant it."""
        check_text("approver", approver, max_length=MAX_PRINCIPAL_LENGTH)
        check_text("reason", reason, max_length=MAX_REASON_LENGTH, optional=True)
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
        # One transaction of the store: the request's grant, its approval and `ir.approval_created`.
        approval, token, granted = self.approvals.grant(
            request, granted_by=approver, ttl_seconds=ttl_seconds,
            reason=reason if reason is not None else request.reason)
        logger.info("approval request %s granted by %s as approval %s", request_id, approver,
                    approval.approval_id)
        metrics.approval_state("granted")
        metrics.time_to_approve((now_us() - request.created_us) / 1e6)
        return Grant(ApprovalRequestView(granted, approval), token)

    def break_glass(self, tenant_id: str, ir_hash: str, by: str, reason: str, *,
                    ttl_seconds: int | float | None = None) -> Grant:
        """The emergency path: mint a token for `ir_hash` with no decision, no separate requester
        and no second person. It is never silent: the ledger holds it as a request made and
        granted by `by`, its reason (required) prefixed `break-glass: `, the approval carries the
        same, `ir.approval_created` is published as for a grant (in the grant's one store
        transaction), and a warning is logged."""
        check_text("tenant_id", tenant_id, max_length=MAX_TENANT_LENGTH)
        check_text("ir_hash", ir_hash, max_length=MAX_DIGEST_LENGTH)
        check_text("by", by, max_length=MAX_PRINCIPAL_LENGTH)
        check_text("reason", reason, max_length=MAX_REASON_LENGTH - len(BREAK_GLASS))
        # Refused before anything is written: a malformed digest or ttl leaves no request behind.
        verify_digest(ir_hash, allowed=self.config.allowed_algorithms)
        validate_ttl(self.approvals.default_ttl if ttl_seconds is None else ttl_seconds,
                     max_ttl=self.approvals.max_ttl)
        recorded = BREAK_GLASS + reason
        decided = self.ledger.get_decision(tenant_id, ir_hash)
        # Nothing decided the risk: record the highest tier rather than guess a lower one.
        request = ApprovalRequest(new_request_id(), tenant_id, ir_hash, by,
                                  decided.risk_tier if decided is not None else 3, now_us(), reason=recorded)
        self.ledger.insert_request(request)
        try:
            approval, token, granted = self.approvals.grant(request, granted_by=by, ttl_seconds=ttl_seconds,
                                                            reason=recorded)
        except BaseException:
            # Nothing was minted; the attempt stays on record, withdrawn.
            with contextlib.suppress(Exception):
                self.ledger.transition(request.request_id, tenant_id=tenant_id,
                                       from_states=(RequestState.REQUESTED,),
                                       changes={"state": RequestState.REVOKED, "revoked_by": by,
                                                "revoked_us": now_us(), "revoke_reason": BREAK_GLASS + "not granted"})
            raise
        metrics.approval_state("granted")
        logger.warning("break-glass: approval %s (request %s) for ir %s of tenant %s minted by %s with no "
                       "decision and no second person: %s", approval.approval_id, request.request_id, ir_hash,
                       tenant_id, by, reason)
        return Grant(ApprovalRequestView(granted, approval), token)

    def request_tenant(self, request_id: str) -> str | None:
        """The tenant of an approval request, or None: lets a caller entitled to several tenants
        find which one to check before asking for the request itself."""
        if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
            return None
        request = self.ledger.get_request(request_id)
        return None if request is None else request.tenant_id

    def get_request(self, request_id: str, tenant_id: str) -> ApprovalRequestView:
        return self._view(self._request_of(request_id, tenant_id))

    def list_requests(self, tenant_id: str, *, status: str | None = None, limit: int = 50,
                      cursor: str | None = None) -> tuple[list[ApprovalRequestView], str | None]:
        """Requests of `tenant_id`, newest first. With `status`, a page may hold fewer than
        `limit` items while more follow: continue with the cursor until it is None."""
        check_text("tenant_id", tenant_id, max_length=MAX_TENANT_LENGTH)
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
        check_text("by", by, max_length=MAX_PRINCIPAL_LENGTH)
        check_text("reason", reason, max_length=MAX_REASON_LENGTH, optional=True)
        request = self._request_of(request_id, tenant_id)
        if request.state is RequestState.REVOKED:
            return self._view(request)
        # One operation of the store: the approval (while pending) and the request are revoked together.
        after, _ = self.approvals.revoke_request(request, by=by, reason=reason)
        logger.info("approval request %s revoked by %s", request_id, by)
        metrics.approval_state("revoked")
        return self._view(after)
