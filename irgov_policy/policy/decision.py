"""The `Decision`: one evaluation of one IR, fully explained, and its `ir.validated_*` event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..events.envelope import format_payload_timestamp, format_timestamp
from ..events.types import EventType
from ..text_rules import redact_tokens

__all__ = ["Decision", "HighRiskStep", "RuleHit", "Status", "StepResult", "Violation"]


class Status:
    PASS = "PASS"
    ESCALATE = "ESCALATE"
    REJECT = "REJECT"


@dataclass(frozen=True)
class RuleHit:
    """A rule, tier entry or check that fired on a step. `mode` `audit` hits never count."""

    pack: str | None
    rule: str
    tier: int | None
    reason: str
    mode: str = "enforce"

    def to_dict(self) -> dict[str, Any]:
        return {"pack": self.pack, "rule": self.rule, "tier": self.tier, "reason": self.reason, "mode": self.mode}


@dataclass(frozen=True)
class Violation:
    """A violation; `step_index` is None for IR-wide ones. Only `enforce` ERRORs reject."""

    step_index: int | None
    code: str
    message: str
    severity: str = "ERROR"
    pack: str | None = None
    rule: str | None = None
    mode: str = "enforce"

    def __post_init__(self) -> None:
        # A message may quote the IR or a rule's text: a token there is never shown.
        object.__setattr__(self, "message", redact_tokens(self.message))

    def to_dict(self) -> dict[str, Any]:
        return {"step_index": self.step_index, "code": self.code, "message": self.message,
                "severity": self.severity, "pack": self.pack, "rule": self.rule, "mode": self.mode}

    def to_payload(self) -> dict[str, Any]:
        return {"step_index": self.step_index, "code": self.code, "message": self.message,
                "severity": self.severity, "pack": self.pack, "rule": self.rule}


@dataclass(frozen=True)
class StepResult:
    index: int
    step_id: str | None
    action: str
    provider: str
    tier: int
    hits: tuple[RuleHit, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "step_id": self.step_id, "action": self.action, "provider": self.provider,
                "tier": self.tier, "hits": [h.to_dict() for h in self.hits]}


@dataclass(frozen=True)
class HighRiskStep:
    """A step at or above the escalation threshold, with the reasons of its highest hits."""

    step_index: int
    action: str
    provider: str
    risk_tier: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"step_index": self.step_index, "action": self.action, "provider": self.provider,
                "risk_tier": self.risk_tier, "reason": self.reason}


@dataclass(frozen=True)
class Decision:
    """PASS, ESCALATE or REJECT for one IR, with every hit, violation and the packs used."""

    status: str
    risk_tier: int
    requires_approval: bool
    ir_hash: str
    tenant_id: str
    request_id: str | None
    step_count: int
    steps: tuple[StepResult, ...]
    violations: tuple[Violation, ...]
    high_risk_steps: tuple[HighRiskStep, ...]
    packs: tuple[dict[str, str], ...]
    engine: str
    evaluated_at: datetime
    duration_us: int
    notes: tuple[str, ...] = ()
    """how the input was read, e.g. a `created_at` without offset taken as UTC"""

    def __post_init__(self) -> None:
        # An invalid IR's tenant and request id are reported as sent: never with a token in them.
        if isinstance(self.tenant_id, str):
            object.__setattr__(self, "tenant_id", redact_tokens(self.tenant_id))
        if isinstance(self.request_id, str):
            object.__setattr__(self, "request_id", redact_tokens(self.request_id))

    @property
    def event_type(self) -> EventType:
        return {
            Status.PASS: EventType.VALIDATED_PASS,
            Status.ESCALATE: EventType.VALIDATED_ESCALATE,
        }.get(self.status, EventType.VALIDATED_REJECT)

    @property
    def enforced_violations(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.mode == "enforce")

    def violation_codes(self) -> list[str]:
        """Codes of the enforced violations, in order (handy in tests and policy tests)."""
        return [v.code for v in self.enforced_violations]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "risk_tier": self.risk_tier,
            "requires_approval": self.requires_approval,
            "ir_hash": self.ir_hash,
            "tenant_id": self.tenant_id,
            "request_id": self.request_id,
            "step_count": self.step_count,
            "steps": [s.to_dict() for s in self.steps],
            "violations": [v.to_dict() for v in self.violations],
            "high_risk_steps": [h.to_dict() for h in self.high_risk_steps],
            "packs": [dict(p) for p in self.packs],
            "engine": self.engine,
            "evaluated_at": format_timestamp(self.evaluated_at),
            "duration_us": self.duration_us,
            "notes": list(self.notes),
        }

    def event_payload(self) -> dict[str, Any]:
        """The seed's payload of `ir.validated_pass|escalate|reject` (audit-mode findings left out)."""
        payload: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "request_id": self.request_id,
            "ir_hash": self.ir_hash,
            "risk_tier": self.risk_tier,
            "requires_approval": self.requires_approval,
            "violations": [v.to_payload() for v in self.enforced_violations],
            "validated_at": format_payload_timestamp(self.evaluated_at),
            "step_count": self.step_count,
        }
        if self.status == Status.ESCALATE:
            payload["high_risk_steps"] = [h.to_dict() for h in self.high_risk_steps]
        return payload
