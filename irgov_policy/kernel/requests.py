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
from collections.abc import Callable, Collection

from ..approvals import ApprovalService
from ..approvals.ledger_records import ApprovalRequest, DecisionEntry, Ledger, RequestState
from ..approvals.records import ApprovalStatus, validate_ttl
from ..config import GovernanceConfig
from ..errors import (
    ApprovalError,
    ConflictError,
    NotClaimantError,
    NotEscalatedError,
    NotFoundError,
    SeparationOfDutiesError,
)
from ..events import Event
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
from .request_details import (
    DEFAULT_STEPS_PAGE,
    SORTS,
    RequestDetails,
    check_page,
    read_snapshot,
    urgency,
)
from .request_events import requested_event, revoked_event
from .views import ApprovalRequestView, Grant, format_us

__all__ = ["BREAK_GLASS", "REQUEST_STATUSES", "ApprovalRequests"]

logger = logging.getLogger(__name__)

#: what `GET /approvals?status=` filters on: the request's own state, or its approval's.
REQUEST_STATUSES = ("requested", "pending", "consumed", "expired", "revoked")
MAX_PAGE = 200
#: how many requests "most urgent first" sorts at most; past it the caller is asked to filter
MAX_URGENT_SCAN = 10_000
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
        return ApprovalRequestView(request, approval, self.ledger.get_decision(request.tenant_id, request.ir_hash))

    @property
    def retention_us(self) -> int:
        """How long the ledger keeps a request that waits (its purge is the request's deadline)."""
        return int(self.config.approval_retention_days * 86_400_000_000)

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
        # The IR's request id rides with the request to its approval and every approval event.
        request = ApprovalRequest(new_request_id(), tenant, ir_hash, requested_by, entry.risk_tier, now_us(),
                                  reason=reason, correlation_id=entry.request_id)
        self.ledger.insert_request(request)
        logger.info("approval request %s for ir %s of tenant %s by %s", request.request_id, ir_hash, tenant,
                    requested_by)
        metrics.approval_state("requested")
        self._publish(requested_event(request, entry))
        return ApprovalRequestView(request, None, entry)

    def _publish(self, event: Event) -> None:
        if self.approvals.bus is not None:
            self.approvals.bus.publish(event)  # never raises: a request never depends on its event

    def _separation_refusal(self, request: ApprovalRequest, approver: str) -> str | None:
        if not self.config.separation_of_duties:
            return None
        if approver == request.requested_by:
            return f"`{approver}` requested approval request `{request.request_id}` and cannot grant it"
        if approver in self.ledger.submitters(request.tenant_id, request.ir_hash):
            return f"`{approver}` submitted the ir of approval request `{request.request_id}` and cannot grant it"
        return None

    def grant(self, request_id: str, approver: str, tenant_id: str, *, ttl_seconds: int | float | None = None,
              reason: str | None = None, deliver: str = "response") -> Grant:
        """Approve a request: creates the approval and returns its token, once. With separation
        of duties, whoever submitted the IR or requested the approval cannot grant it.

        With `deliver="claim"` (the console's Approve) the approver never sees the token: it is
        sealed beside the request, the `Grant` holds none, and the requester takes it once with
        `claim_token`."""
        check_text("approver", approver, max_length=MAX_PRINCIPAL_LENGTH)
        check_text("reason", reason, max_length=MAX_REASON_LENGTH, optional=True)
        request = self._request_of(request_id, tenant_id)
        if request.state is not RequestState.REQUESTED:
            raise ConflictError(f"approval request `{request_id}` is already {request.state.value}")
        refusal = self._separation_refusal(request, approver)
        if refusal is not None:
            raise SeparationOfDutiesError(refusal)
        self._escalated(request.tenant_id, request.ir_hash)
        # One transaction of the store: the request's grant, its approval and `ir.approval_created`.
        approval, token, granted = self.approvals.grant(
            request, granted_by=approver, ttl_seconds=ttl_seconds,
            reason=reason if reason is not None else request.reason, deliver=deliver)
        logger.info("approval request %s granted by %s as approval %s (token delivered by %s)", request_id, approver,
                    approval.approval_id, deliver)
        metrics.approval_state("granted")
        metrics.time_to_approve((now_us() - request.created_us) / 1e6)
        view = ApprovalRequestView(granted, approval, self.ledger.get_decision(request.tenant_id, request.ir_hash))
        return Grant(view, token if deliver == "response" else None)

    def claim_token(self, request_id: str, tenant_id: str, *, by: str) -> Grant:
        """The token of a request granted to be claimed, handed to its requester (or a submitter
        of the IR) once; the sealed copy is erased as it is handed over. Refused with the reason:
        another principal (`NotClaimantError`), a request not granted, revoked, granted with the
        token in the answer, claimed already or whose approval can no longer be used
        (`ConflictError`)."""
        check_text("by", by, max_length=MAX_PRINCIPAL_LENGTH)
        request = self._request_of(request_id, tenant_id)
        if by != request.requested_by and by not in self.ledger.submitters(request.tenant_id, request.ir_hash):
            raise NotClaimantError(f"`{by}` neither requested approval request `{request_id}` nor submitted its ir: "
                                   "only they may claim its token")
        self._check_claimable(request)
        approval = self.approvals.get(request.approval_id, request.tenant_id) if request.approval_id else None
        if approval is None or approval.status is not ApprovalStatus.PENDING:
            state = "gone" if approval is None else approval.status.value
            raise ConflictError(f"the approval of request `{request_id}` is {state}: its token can no longer be used")
        token = self.approvals.claim(request, claimed_by=by)
        after = self._request_of(request_id, tenant_id)
        if token is None:  # claimed or revoked between the checks and the claim
            self._check_claimable(after)
            raise ConflictError(f"the token of approval request `{request_id}` can no longer be claimed")
        logger.info("the token of approval request %s was claimed by %s", request_id, by)
        return Grant(ApprovalRequestView(after, approval, self.ledger.get_decision(after.tenant_id, after.ir_hash)),
                     token)

    @staticmethod
    def _check_claimable(request: ApprovalRequest) -> None:
        rid = request.request_id
        if request.state is RequestState.REQUESTED:
            raise ConflictError(f"approval request `{rid}` is not granted yet: there is no token to claim")
        if request.state is RequestState.REVOKED:
            raise ConflictError(f"approval request `{rid}` is revoked: there is no token to claim")
        if request.claimed_by is not None:
            raise ConflictError(f"the token of approval request `{rid}` was claimed by `{request.claimed_by}` at "
                                f"{format_us(request.claimed_us)}: a token is handed over once")
        if request.delivery != "claim":
            raise ConflictError(f"the token of approval request `{rid}` was delivered in the answer to its grant: "
                                "there is nothing to claim")

    def break_glass(self, tenant_id: str, ir_hash: str, by: str, reason: str, *,
                    ttl_seconds: int | float | None = None, ir_request_id: str | None = None) -> Grant:
        """The emergency path: mint a token for `ir_hash` with no decision, no separate requester
        and no second person. It is never silent: the ledger holds it as a request made and
        granted by `by`, its reason (required) prefixed `break-glass: `, the approval carries the
        same, `ir.approval_created` is published as for a grant (in the grant's one store
        transaction), and a warning is logged. `ir_request_id`, the IR's `request_id` when the
        caller knows it, is the `meta.correlation_id` of the approval's events (else the
        kernel's decision on the IR supplies it, when there is one)."""
        check_text("tenant_id", tenant_id, max_length=MAX_TENANT_LENGTH)
        check_text("ir_hash", ir_hash, max_length=MAX_DIGEST_LENGTH)
        check_text("by", by, max_length=MAX_PRINCIPAL_LENGTH)
        check_text("reason", reason, max_length=MAX_REASON_LENGTH - len(BREAK_GLASS))
        check_text("ir_request_id", ir_request_id, max_length=MAX_PRINCIPAL_LENGTH, optional=True)
        # Refused before anything is written: a malformed digest or ttl leaves no request behind.
        verify_digest(ir_hash, allowed=self.config.allowed_algorithms)
        validate_ttl(self.approvals.default_ttl if ttl_seconds is None else ttl_seconds,
                     max_ttl=self.approvals.max_ttl)
        recorded = BREAK_GLASS + reason
        decided = self.ledger.get_decision(tenant_id, ir_hash)
        # Nothing decided the risk: record the highest tier rather than guess a lower one.
        request = ApprovalRequest(new_request_id(), tenant_id, ir_hash, by,
                                  decided.risk_tier if decided is not None else 3, now_us(), reason=recorded,
                                  correlation_id=ir_request_id if ir_request_id is not None
                                  else decided.request_id if decided is not None else None)
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

    def request_details(self, request_id: str, tenant_id: str, *, steps_offset: int = 0,
                        steps_limit: int = DEFAULT_STEPS_PAGE, viewer: str | None = None) -> RequestDetails:
        """What a human needs to judge the request (`request_details`): the request, its approval,
        the decision with one page of its steps, who submitted the IR, the TTL a grant would get,
        and, for `viewer`, why separation of duties keeps them from granting it (or None)."""
        offset, limit = check_page(steps_offset, steps_limit)
        check_text("viewer", viewer, max_length=MAX_PRINCIPAL_LENGTH, optional=True)
        request = self._request_of(request_id, tenant_id)
        view = self._view(request)
        full = self.ledger.get_decision(request.tenant_id, request.ir_hash, with_snapshot=True)
        refusal = None
        if viewer is not None and request.state is RequestState.REQUESTED:
            refusal = self._separation_refusal(request, viewer)
        return RequestDetails(view, read_snapshot(full), tuple(self.ledger.submitters(request.tenant_id, request.ir_hash)),
                              self.approvals.default_ttl, self.approvals.max_ttl, offset, limit, now_us(),
                              self.retention_us, refusal)

    def list_requests(self, tenant_id: str, *, status: str | None = None, limit: int = 50,
                      cursor: str | None = None, tiers: Collection[int] | None = None,
                      sort: str = "newest") -> tuple[list[ApprovalRequestView], str | None]:
        """Requests of `tenant_id`, newest first, or with `sort="urgent"` most urgent first
        (highest tier, then least time left, then oldest). `status` and `tiers` filter. Newest
        first, a filtered page may hold fewer than `limit` items while more follow: continue
        with the cursor until it is None."""
        check_text("tenant_id", tenant_id, max_length=MAX_TENANT_LENGTH)
        if status is not None and status not in REQUEST_STATUSES:
            raise ApprovalError(f"unknown status `{status}`: use " + ", ".join(f"`{s}`" for s in REQUEST_STATUSES))
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ApprovalError(f"`limit` must be an integer from 1 to {MAX_PAGE}, not `{limit!r}`")
        if sort not in SORTS:
            raise ApprovalError(f"unknown sort `{sort}`: use " + ", ".join(f"`{s}`" for s in SORTS))
        wanted = None if tiers is None else frozenset(tiers)
        if wanted is not None and (not wanted or any(isinstance(t, bool) or t not in range(4) for t in wanted)):
            raise ApprovalError("`tier` must be one or more of 0, 1, 2, 3")
        state = {"requested": RequestState.REQUESTED}.get(status or "")
        if status in ("pending", "consumed", "expired"):
            state = RequestState.GRANTED

        def keep(view: ApprovalRequestView) -> bool:
            # `revoked` also covers approvals revoked by too many mismatches: filtered after reading.
            return (status is None or view.status == status) and (wanted is None or view.request.risk_tier in wanted)

        if sort == "urgent":
            return self._urgent_page(tenant_id, state, keep, limit, cursor)
        try:
            requests, next_cursor = self.ledger.list_requests(tenant_id, state=state, limit=limit, cursor=cursor)
        except ValueError as exc:
            raise ApprovalError(str(exc)) from None
        return [v for v in map(self._view, requests) if keep(v)], next_cursor

    def _urgent_page(self, tenant_id: str, state: RequestState | None, keep: Callable[[ApprovalRequestView], bool],
                     limit: int, cursor: str | None) -> tuple[list[ApprovalRequestView], str | None]:
        """Most urgent first needs every match at hand: read them all (up to MAX_URGENT_SCAN,
        past which the caller is asked to filter rather than shown a partial order), sort, and
        page by position (`urgent:<offset>`)."""
        offset = 0
        if cursor is not None:
            if not isinstance(cursor, str) or not cursor.startswith("urgent:") or not cursor[7:].isdigit():
                raise ApprovalError(f"cursor `{cursor}` is not one returned by a previous page sorted by urgency")
            offset = int(cursor[7:])
        views: list[ApprovalRequestView] = []
        scanned = 0
        after: str | None = None
        while True:
            requests, after = self.ledger.list_requests(tenant_id, state=state, limit=MAX_PAGE, cursor=after)
            scanned += len(requests)
            if scanned > MAX_URGENT_SCAN:
                raise ApprovalError(f"more than {MAX_URGENT_SCAN} requests to sort by urgency: filter by status "
                                    "or tier, or sort by newest")
            views += [v for v in map(self._view, requests) if keep(v)]
            if after is None:
                break
        now = now_us()
        views.sort(key=lambda v: urgency(v, now_us=now, retention_us=self.retention_us))
        page = views[offset:offset + limit]
        return page, (f"urgent:{offset + limit}" if offset + limit < len(views) else None)

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
        if after.state is RequestState.REVOKED:
            self._publish(revoked_event(after))
        return self._view(after)
