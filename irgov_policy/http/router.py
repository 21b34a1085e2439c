"""The FastAPI router: `create_router(governance, auth=...)`.

Every route but `/health` needs a principal; every approval route is scoped to the principal's
tenants (another tenant's request is answered 404, as if it did not exist). No response ever
carries a token digest; the token itself appears once, in the answer to a grant.
"""

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse

from ..errors import IRInputError
from ..kernel import REQUEST_STATUSES, Governance
from ..kernel.request_details import DEFAULT_STEPS_PAGE, MAX_STEPS_PAGE, SORTS, list_item
from ..kernel.requests import now_us
from ..text_rules import MAX_IDEMPOTENCY_KEY_LENGTH, REQUEST_ID_PATTERN
from .auth import ApiKeyAuth, Authenticator, Principal, Role
from .guard import authenticated_principal, guarded_route_class, strict_body
from .metrics_route import METRICS_ROUTE, add_metrics_route
from .problems import ProblemError, problem_responses
from .schemas import (
    DAG_SCHEMA,
    ApprovalRequestOut,
    ClearanceOut,
    ConsumeBody,
    ConsumeOut,
    GrantBody,
    GrantOut,
    HealthOut,
    PackSetOut,
    ReloadOut,
    RequestApprovalBody,
    RequestDetailsOut,
    RequestListOut,
    RevokeBody,
    ir_body_schema,
)

__all__ = ["create_router"]

ANY_ROLE = (Role.SUBMITTER, Role.APPROVER, Role.ADMIN)
SUBMITTERS = (Role.SUBMITTER, Role.ADMIN)
APPROVERS = (Role.APPROVER, Role.ADMIN)
# Routes answered without credentials (their name is the endpoint function's).
PUBLIC_ROUTES = frozenset({"health"})
RequestId = Annotated[str, Path(pattern=REQUEST_ID_PATTERN, description="an approval request id")]
# A retry with the same key, token and caller is answered with the first consume's success.
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1,
                                               max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
                                               description="replays the first success of a retried consume")]


def _json_body(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/json": {"schema": dict(schema)}}}}


def _forbidden_tenant(tenant_id: str) -> ProblemError:
    return ProblemError(403, "forbidden-tenant", f"this principal may not act for tenant `{tenant_id}`")


def _check_tenant(principal: Principal, tenant_id: Any) -> None:
    if isinstance(tenant_id, str) and not principal.can_access(tenant_id):
        raise _forbidden_tenant(tenant_id)


def create_router(governance: Governance, auth: Authenticator | None = None, *, console: bool = True) -> APIRouter:
    """The API over `governance`. `auth` is a dependency returning a `Principal` (plain or
    async); by default API keys from the configuration (`api_keys`, `IRGOV_API_KEYS`). With
    `console`, the approvals console is served under `/console` (docs/console.md)."""
    authenticate: Authenticator = auth if auth is not None else ApiKeyAuth(governance.config.api_keys)
    limits = governance.engine.limits

    def role(*allowed: Role) -> Any:
        async def dependency(principal: Annotated[Principal, Depends(authenticated_principal)]) -> Principal:
            if principal.role not in allowed:
                raise ProblemError(403, "forbidden-role",
                                   f"role `{principal.role.value}` may not do this: it needs "
                                   + " or ".join(f"`{r.value}`" for r in allowed))
            return principal
        return Depends(dependency)

    async def read_json(request: Request) -> Any:
        # The guard has authenticated the caller, bounded the body and parsed it already.
        return strict_body(request, await request.body(), limits)

    def envelope(data: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ProblemError(422, "invalid-request", "the body must be a json object",
                               errors=[{"pointer": "/", "message": "must be an object"}])
        problems = [{"pointer": f"/{k}", "message": "is required"} for k in required if k not in data]
        problems += [{"pointer": f"/{k}", "message": "unknown field"} for k in data
                     if k not in required and k not in optional]
        if problems:
            raise ProblemError(422, "invalid-request",
                               "; ".join(f"{p['pointer']}: {p['message']}" for p in problems), errors=problems)
        return data

    def prefixed(exc: IRInputError, prefix: str) -> ProblemError:
        items = [{"pointer": prefix + (p.pointer or ""), "message": p.message} for p in exc.problems]
        return ProblemError(422, "invalid-ir", "; ".join(f"{i['pointer']}: {i['message']}" for i in items),
                            errors=items)

    public = PUBLIC_ROUTES | ({METRICS_ROUTE} if governance.config.metrics_public else set())
    router = APIRouter(route_class=guarded_route_class(authenticate, limits, public=public),
                       tags=["governance"])
    errors_auth = problem_responses(401, 403)
    ir_schema = ir_body_schema()
    pair_schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "required": ["ir", "dag"],
                   "properties": {"ir": ir_schema, "dag": DAG_SCHEMA}}
    diff_schema = {**pair_schema, "properties": {
        **pair_schema["properties"],
        "require_node_content": {"type": "boolean", "default": False,
                                 "description": "refuse nodes that carry only a claimed hash"}}}
    authorize_schema = {**pair_schema, "properties": {
        **pair_schema["properties"],
        "approval_token": {"type": ["string", "null"], "description": "needed when the ir escalates"}}}

    @router.post("/validate", summary="Decide on an IR: PASS, ESCALATE or REJECT",
                 responses={200: {"description": "the decision (an invalid IR is a REJECT decision)"},
                            **errors_auth, **problem_responses(400, 413)},
                 openapi_extra=_json_body(ir_schema, "the IR"))
    async def validate(request: Request, principal: Annotated[Principal, role(*ANY_ROLE)]) -> JSONResponse:
        data = await read_json(request)
        if isinstance(data, dict):
            _check_tenant(principal, data.get("tenant_id"))
        decision = await governance.avalidate(data, submitted_by=principal.name)
        return JSONResponse(decision.to_dict())

    @router.post("/diff-audit", summary="Compare an executable DAG with its IR, step by step",
                 responses={200: {"description": "the audit; `success` says whether the DAG is the IR"},
                            **errors_auth, **problem_responses(400, 413, 422)},
                 openapi_extra=_json_body(diff_schema, "the IR and its DAG"))
    async def diff_audit(request: Request, principal: Annotated[Principal, role(*ANY_ROLE)]) -> JSONResponse:
        data = envelope(await read_json(request), ("ir", "dag"), ("require_node_content",))
        if isinstance(data["ir"], dict):
            _check_tenant(principal, data["ir"].get("tenant_id"))
        require_content = data.get("require_node_content", False)
        if not isinstance(require_content, bool):
            raise ProblemError(422, "invalid-request", "`require_node_content` must be a boolean",
                               errors=[{"pointer": "/require_node_content", "message": "must be a boolean"}])
        dag = data["dag"]
        if not isinstance(dag, list) and not (isinstance(dag, dict) and isinstance(dag.get("nodes"), list)):
            raise ProblemError(422, "invalid-dag", "`dag` must be a list of nodes or an object with a `nodes` list",
                               errors=[{"pointer": "/dag", "message": "must be a list or an object with `nodes`"}])
        try:
            result = await governance.aaudit(data["ir"], dag, require_content=require_content)
        except IRInputError as exc:
            raise prefixed(exc, "/ir") from None
        return JSONResponse(result.to_dict())

    @router.post("/authorize", summary="The execution gate: validate, audit and consume the approval",
                 responses={200: {"model": ClearanceOut, "description": "the clearance; run only when `allowed`"},
                            **errors_auth, **problem_responses(400, 409, 413, 422, 429, 503)},
                 openapi_extra=_json_body(authorize_schema, "the IR, its DAG and the approval token"))
    async def authorize(request: Request, principal: Annotated[Principal, role(*SUBMITTERS)],
                        idempotency_key: IdempotencyKey = None) -> JSONResponse:
        data = envelope(await read_json(request), ("ir", "dag"), ("approval_token",))
        token = data.get("approval_token")
        if token is not None and not isinstance(token, str):
            raise ProblemError(422, "invalid-request", "`approval_token` must be a string or null",
                               errors=[{"pointer": "/approval_token", "message": "must be a string or null"}])
        if isinstance(data["ir"], dict):
            _check_tenant(principal, data["ir"].get("tenant_id"))
        if not isinstance(data["ir"], dict):
            raise ProblemError(422, "invalid-ir", "`ir` must be a json object",
                               errors=[{"pointer": "/ir", "message": "must be an object"}])
        clearance = await governance.aauthorize_execution(data["ir"], data["dag"], token, executed_by=principal.name,
                                                          idempotency_key=idempotency_key)
        return JSONResponse(clearance.to_dict())

    @router.post("/approvals", status_code=201, summary="Ask for the approval of an escalated IR",
                 responses={201: {"model": ApprovalRequestOut, "description": "the approval request"},
                            **errors_auth, **problem_responses(409, 422)})
    async def request_approval(body: RequestApprovalBody,
                               principal: Annotated[Principal, role(*SUBMITTERS)]) -> JSONResponse:
        _check_tenant(principal, body.tenant_id)
        view = await governance.arequest_approval(body.ir_hash, principal.name, tenant_id=body.tenant_id,
                                                  reason=body.reason)
        return JSONResponse(view.to_dict(), status_code=201)

    @router.post("/approvals/consume", summary="Consume an approval token (once)",
                 responses={200: {"model": ConsumeOut, "description": "`success` and, if not, the `reason`"},
                            **errors_auth, **problem_responses(409, 422, 429, 503)})
    async def consume(body: ConsumeBody, principal: Annotated[Principal, role(*SUBMITTERS)],
                      idempotency_key: IdempotencyKey = None) -> JSONResponse:
        _check_tenant(principal, body.tenant_id)
        result = await governance.aconsume(body.token, tenant_id=body.tenant_id, ir_hash=body.ir_hash,
                                           consumed_by=principal.name, idempotency_key=idempotency_key)
        return JSONResponse(result.to_dict())

    async def tenant_of(request_id: str, principal: Principal) -> str:
        tenant = await governance.arequest_tenant(request_id)
        if tenant is None or not principal.can_access(tenant):
            raise ProblemError(404, "not-found", f"approval request `{request_id}` does not exist")
        return tenant

    @router.post("/approvals/{request_id}/grant", summary="Grant an approval request; the token is shown once",
                 responses={200: {"model": GrantOut, "description": "the granted request and its token"},
                            **errors_auth, **problem_responses(404, 409, 422)})
    async def grant(request_id: RequestId, principal: Annotated[Principal, role(*APPROVERS)],
                    body: GrantBody | None = None) -> JSONResponse:
        tenant = await tenant_of(request_id, principal)
        body = body or GrantBody()
        granted = await governance.agrant(request_id, principal.name, tenant, ttl_seconds=body.ttl_seconds,
                                          reason=body.reason, deliver=body.deliver)
        return JSONResponse(granted.to_dict(), headers={"Cache-Control": "no-store"})

    @router.post("/approvals/{request_id}/claim", summary="Claim the token of a request granted to be claimed (once)",
                 responses={200: {"model": GrantOut, "description": "the request and its token, shown once"},
                            **errors_auth, **problem_responses(404, 409, 422)})
    async def claim(request_id: RequestId, principal: Annotated[Principal, role(*ANY_ROLE)]) -> JSONResponse:
        # Only the requester or a submitter may claim: the kernel checks the principal's name.
        tenant = await tenant_of(request_id, principal)
        claimed = await governance.aclaim_token(request_id, tenant, by=principal.name)
        return JSONResponse(claimed.to_dict(), headers={"Cache-Control": "no-store"})

    @router.get("/approvals/{request_id}", summary="One approval request with what a human needs to judge it",
                responses={200: {"model": RequestDetailsOut, "description": "the request, its decision and one "
                                                                           "page of its steps"},
                           **errors_auth, **problem_responses(404, 422)})
    async def get_request(
        request_id: RequestId, principal: Annotated[Principal, role(*ANY_ROLE)],
        steps_offset: Annotated[int, Query(ge=0, description="the first step of the page")] = 0,
        steps_limit: Annotated[int, Query(ge=1, le=MAX_STEPS_PAGE, description="steps per page")] = DEFAULT_STEPS_PAGE,
    ) -> JSONResponse:
        tenant = await tenant_of(request_id, principal)
        details = await governance.arequest_details(request_id, tenant, steps_offset=steps_offset,
                                                    steps_limit=steps_limit, viewer=principal.name)
        return JSONResponse(details.to_dict())

    @router.get("/approvals", summary="Approval requests of a tenant, newest or most urgent first",
                responses={200: {"model": RequestListOut, "description": "one page; follow `next_cursor`"},
                           **errors_auth, **problem_responses(422)})
    async def list_requests(
        principal: Annotated[Principal, role(*ANY_ROLE)],
        status: Annotated[str | None, Query(description="one of " + ", ".join(REQUEST_STATUSES),
                                            pattern="^(" + "|".join(REQUEST_STATUSES) + ")$")] = None,
        cursor: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        tenant_id: Annotated[str | None, Query(min_length=1, max_length=100,
                                               description="needed when the principal has several tenants")] = None,
        tier: Annotated[list[int] | None, Query(description="only these risk tiers, 0 to 3 (repeatable)")] = None,
        sort: Annotated[str, Query(pattern="^(" + "|".join(SORTS) + ")$",
                                   description="`newest` first, or most `urgent` first (tier, time left, age)")
                        ] = "newest",
    ) -> JSONResponse:
        tenant = tenant_id or principal.only_tenant
        if tenant is None:
            raise ProblemError(422, "invalid-request", "`tenant_id` is required for a principal of several tenants",
                               errors=[{"pointer": "query:tenant_id", "message": "is required"}])
        _check_tenant(principal, tenant)
        views, next_cursor = await governance.alist_requests(tenant, status=status, limit=limit, cursor=cursor,
                                                             tiers=tier, sort=sort)
        now, retention = now_us(), governance.retention_us
        return JSONResponse({"items": [list_item(v, now_us=now, retention_us=retention) for v in views],
                             "next_cursor": next_cursor})

    @router.post("/approvals/{request_id}/revoke", summary="Withdraw a request and revoke its pending approval",
                 responses={200: {"model": ApprovalRequestOut, "description": "the request as it now is"},
                            **errors_auth, **problem_responses(404, 409, 422)})
    async def revoke(request_id: RequestId, principal: Annotated[Principal, role(*APPROVERS)],
                     body: RevokeBody | None = None) -> JSONResponse:
        tenant = await tenant_of(request_id, principal)
        body = body or RevokeBody()
        view = await governance.arevoke(request_id, tenant, by=principal.name, reason=body.reason)
        return JSONResponse(view.to_dict())

    @router.get("/packs", summary="The rule pack set in force, its reloads, shadow set and decision log",
                responses={200: {"model": PackSetOut, "description": "digest, loaded_at, each pack, last reload "
                                                                     "and its error"},
                           **errors_auth})
    async def packs(principal: Annotated[Principal, role(*ANY_ROLE)]) -> JSONResponse:
        return JSONResponse(governance.pack_status())

    @router.post("/packs/reload", summary="Reload the rule packs: proved by load, lint and policy tests first",
                 responses={200: {"model": ReloadOut, "description": "the reload; on failure (`ok` false) the "
                                                                     "set in force stays"},
                            **errors_auth})
    async def reload_packs(principal: Annotated[Principal, role(Role.ADMIN)]) -> JSONResponse:
        # The pack set is every tenant's: an admin of some tenants only may not change it.
        if principal.tenants is not None:
            raise ProblemError(403, "forbidden-tenant", "reloading the rule packs needs an admin of every tenant")
        result = await governance.areload_packs(by=principal.name, trigger="api")
        return JSONResponse(result.to_dict())

    @router.get("/health", summary="Liveness and readiness (no credentials needed)",
                responses={200: {"model": HealthOut, "description": "the store and the ledger answer"},
                           503: {"model": HealthOut, "description": "a dependency does not answer"}})
    async def health() -> JSONResponse:
        report = await governance.ahealth()
        # Unauthenticated: the pack set's digest and times, never the reload error's text.
        packs = {k: report["packs"][k] for k in ("digest", "loaded_at", "last_reload_failed_at")}
        # Which store is slow or failing, by name and kind only: no address, no message.
        body = {"status": report["status"], "version": report["version"], "checks": report["checks"],
                "packs": packs}
        return JSONResponse(body, status_code=200 if report["status"] == "ok" else 503)

    add_metrics_route(router, governance)
    if console:
        from .console import create_console_router

        router.include_router(create_console_router(governance), prefix="/console")
    return router
