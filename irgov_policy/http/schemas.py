"""Request and response models of the HTTP API, for validation and for the OpenAPI document.

IR and DAG bodies are not parsed by pydantic: they go through the strict JSON reader (duplicate
keys, NaN, deep nesting, unsafe integers refused) and the strict IR model. Their OpenAPI schema
is the shipped JSON Schema, inlined.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ..model import ir_schema
from ..text_rules import MAX_DIGEST_LENGTH, MAX_REASON_LENGTH, MAX_TENANT_LENGTH, TEXT_PATTERN

__all__ = [
    "ApprovalOut",
    "ApprovalRequestOut",
    "ClearanceOut",
    "ConsumeBody",
    "ConsumeOut",
    "GrantBody",
    "GrantOut",
    "HealthOut",
    "PackOut",
    "RequestApprovalBody",
    "RequestDetailsOut",
    "RequestItemOut",
    "RequestListOut",
    "RevokeBody",
    "ir_body_schema",
]

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestApprovalBody(_Strict):
    tenant_id: str = Field(min_length=1, max_length=MAX_TENANT_LENGTH, pattern=TEXT_PATTERN)
    ir_hash: str = Field(min_length=1, max_length=MAX_DIGEST_LENGTH, description="`ALGO:HEX` of an IR this server escalated")
    reason: str | None = Field(default=None, min_length=1, max_length=MAX_REASON_LENGTH, pattern=TEXT_PATTERN)


class GrantBody(_Strict):
    # Strict: JSON `true` or `"60"` is not a number of seconds (lax mode would read `true` as 1).
    ttl_seconds: StrictInt | None = Field(default=None, gt=0, description="default from the server configuration")
    reason: str | None = Field(default=None, min_length=1, max_length=MAX_REASON_LENGTH, pattern=TEXT_PATTERN)
    deliver: Literal["response", "claim"] = Field(
        default="response", description="`response`: the token is in this answer; `claim`: it is sealed until the "
                                        "requester claims it (`POST /approvals/{id}/claim`), this answer holds none")


class ConsumeBody(_Strict):
    tenant_id: str = Field(min_length=1, max_length=MAX_TENANT_LENGTH, pattern=TEXT_PATTERN)
    ir_hash: str = Field(min_length=1, max_length=MAX_DIGEST_LENGTH)
    token: str = Field(min_length=1, max_length=200)


class RevokeBody(_Strict):
    reason: str | None = Field(default=None, min_length=1, max_length=MAX_REASON_LENGTH, pattern=TEXT_PATTERN)


class ApprovalOut(BaseModel):
    approval_id: str
    tenant_id: str
    ir_hash: str
    status: Literal["pending", "consumed", "expired", "revoked"]
    ttl_seconds: float
    created_at: str
    expires_at: str
    created_by: str | None
    reason: str | None
    consumed_at: str | None
    consumed_by: str | None
    revoked_at: str | None
    revoked_by: str | None
    revoke_reason: str | None
    expired_at: str | None
    mismatches: int


class ApprovalRequestOut(BaseModel):
    request_id: str
    tenant_id: str
    ir_hash: str
    status: Literal["requested", "granted", "pending", "consumed", "expired", "revoked"]
    risk_tier: int
    requested_by: str
    requested_at: str
    reason: str | None
    granted_by: str | None
    granted_at: str | None
    revoked_by: str | None
    revoked_at: str | None
    revoke_reason: str | None
    token_delivery: Literal["response", "claim"] | None = Field(
        description="how the grant's token was handed over: in its answer, or claimed by the requester")
    claimed_by: str | None
    claimed_at: str | None
    approval: ApprovalOut | None


class GrantOut(ApprovalRequestOut):
    token: str | None = Field(description="the approval token; shown here once and never again (null for a grant "
                                          "made to be claimed)")


class RequestItemOut(ApprovalRequestOut):
    ir_request_id: str | None = Field(description="the IR's own `request_id`")
    intent_summary: str | None = Field(description="the IR's intent summary (shortened in lists)")
    step_count: int | None
    age_seconds: int
    deadline: Literal["request_purged", "approval_expires"] | None = Field(
        description="what ends the chance to act: the waiting request's purge, or the granted approval's expiry")
    deadline_at: str | None
    time_left_seconds: int | None


class RenderingOut(BaseModel):
    text: str = Field(description="JSON (or the string itself), cut at a bound when `truncated`")
    truncated: bool
    size: int = Field(description="the full size in UTF-8 bytes")


class RuleHitOut(BaseModel):
    pack: str | None
    rule: str
    tier: int | None
    reason: str
    mode: str


class StepOut(BaseModel):
    index: int
    step_id: str | None
    action: str
    provider: str
    resource: RenderingOut
    description: RenderingOut | None
    params: RenderingOut
    constraints: RenderingOut
    tier: int | None
    high_risk: bool
    hits: list[RuleHitOut]


class StepsPageOut(BaseModel):
    offset: int
    limit: int
    total: int | None = Field(description="the IR's step count")
    recorded: int = Field(description="steps kept with the decision; below `total` when `omitted` says why")
    next_offset: int | None
    omitted: str | None
    items: list[StepOut]


class DecisionDetailsOut(BaseModel):
    status: str
    risk_tier: int
    decided_at: str | None
    created_at: str | None
    labels: RenderingOut | None
    high_risk_steps: list[dict[str, Any]]
    violations: list[dict[str, Any]]
    violations_total: int
    audit_violations: list[dict[str, Any]] = Field(description="found by rules in audit mode: never enforced")
    audit_violations_total: int
    packs: list[dict[str, str]]
    engine: str
    evaluated_at: str
    notes: list[str]


class GrantTTLOut(BaseModel):
    default_seconds: float
    max_seconds: float


class RequestDetailsOut(RequestItemOut):
    details_missing: str | None = Field(description="why `decision` is null, when it is")
    decision: DecisionDetailsOut | None
    submitted_by: list[str]
    grant_ttl: GrantTTLOut = Field(description="the TTL a grant gets by default, and the most it may ask for")
    grant_refused: str | None = Field(description="for the caller: why separation of duties keeps them from "
                                                  "granting it")
    steps: StepsPageOut


class RequestListOut(BaseModel):
    items: list[RequestItemOut]
    next_cursor: str | None


class ConsumeOut(BaseModel):
    success: bool
    status: str | None
    reason: str | None
    approval_id: str | None


class ClearanceOut(BaseModel):
    allowed: bool
    tenant_id: str | None
    ir_hash: str | None
    status: str | None
    approval_required: bool
    reasons: list[str]
    decision: dict[str, Any] | None
    approval: ConsumeOut | None
    audit: dict[str, Any] | None
    checked_at: str


class PackOut(BaseModel):
    name: str
    version: str
    digest: str
    description: str


class ReloadOut(BaseModel):
    ok: bool
    changed: bool
    trigger: Literal["watch", "signal", "api", "call"]
    by: str
    at: str
    old_digest: str
    new_digest: str | None
    error: str | None


class ShadowOut(BaseModel):
    digest: str
    loaded_at: str
    packs: list[dict[str, str]]
    decisions: int
    divergences: int
    errors: int
    last_divergence: dict[str, Any] | None
    last_reload_error: ReloadOut | None


class DecisionLogOut(BaseModel):
    path: str
    redact: Literal["none", "params", "ir"]
    written: int
    failed: int


class PackSetOut(BaseModel):
    digest: str
    loaded_at: str
    loaded_by: str
    engine: str
    packs: list[PackOut]
    reloads: int
    failed_reloads: int
    last_reload: ReloadOut | None
    last_reload_error: ReloadOut | None
    watching: bool
    shadow: ShadowOut | None
    decision_log: DecisionLogOut | None


class HealthPacksOut(BaseModel):
    digest: str
    loaded_at: str
    last_reload_failed_at: str | None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, str] = Field(description="`ledger`, `approval_store`: `ok`, `slow: ...` or `error: Type`")
    packs: HealthPacksOut


def _inline(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref[len("#/$defs/"):]], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k not in ("$schema", "$id", "$defs")}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def ir_body_schema() -> dict[str, Any]:
    """The IR JSON Schema with its `$defs` inlined, so it can sit inside an OpenAPI document."""
    schema = copy.deepcopy(ir_schema())
    return dict(_inline(schema, schema.get("$defs", {})))


DAG_NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ir_step_id", "ir_step_hash"],
    "properties": {
        "ir_step_id": {"type": "string", "description": "the step's `step_id`, or its index as a string"},
        "ir_step_hash": {"type": "string", "description": "`ALGO:HEX` of the step"},
    },
}
DAG_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "array", "items": DAG_NODE_SCHEMA},
        {"type": "object", "required": ["nodes"], "properties": {"nodes": {"type": "array", "items": DAG_NODE_SCHEMA}}},
    ]
}
