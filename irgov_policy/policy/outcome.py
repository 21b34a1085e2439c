"""From what the rules said to a `Decision`: the status, the high-risk steps and their reasons,
the REJECT of input the model refused (attributed to its tenant and request where they can be
read) and of an evaluation that failed; and publishing the decision's event."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from ..errors import InputProblem
from ..events.bus import EventBus
from ..events.envelope import new_event
from ..hashing import digest_bytes, digest_object, ir_hash
from ..model import IR, InputLimits
from ..producer import salvage_identity
from ..strict_json import loads_strict
from .decision import Decision, HighRiskStep, Status, StepResult, Violation
from .policyset import PolicySet

__all__ = ["EVALUATION_ERROR", "INVALID_IR", "DecisionWriter", "publish_decision"]

logger = logging.getLogger(__name__)

INVALID_IR = "INVALID_IR"
EVALUATION_ERROR = "EVALUATION_ERROR"


class DecisionWriter:
    """Builds the decisions of one engine: its policy set, hash algorithm and input limits."""

    def __init__(self, policy: PolicySet, hash_algorithm: str, limits: InputLimits) -> None:
        self.policy = policy
        self.hash_algorithm = hash_algorithm
        self.limits = limits
        # The same for every decision of this policy set: computed once.
        self._packs = tuple(policy.pack_refs())

    def conclude(self, ir: IR, digest: str, results: list[StepResult], violations: list[Violation],
                 start: int, evaluated_at: datetime) -> Decision:
        threshold = self.policy.escalation_threshold
        risk_tier = max((r.tier for r in results), default=0)
        rejected = any(v.severity == "ERROR" and v.mode == "enforce" for v in violations)
        if rejected:
            status = Status.REJECT
        elif risk_tier >= threshold:
            status = Status.ESCALATE
        else:
            status = Status.PASS
        high = tuple(
            HighRiskStep(r.index, r.action, r.provider, r.tier, _reasons(r))
            for r in results if r.tier >= threshold
        )
        return Decision(
            status=status,
            risk_tier=risk_tier,
            requires_approval=status == Status.ESCALATE,
            ir_hash=digest,
            tenant_id=ir.tenant_id,
            request_id=ir.request_id,
            step_count=len(ir.steps),
            steps=tuple(results),
            violations=tuple(violations),
            high_risk_steps=high,
            packs=self._pack_refs(),
            engine=self.policy.engine.name,
            evaluated_at=evaluated_at,
            duration_us=(time.perf_counter_ns() - start) // 1000,
            notes=ir.notes,
        )

    def _pack_refs(self) -> tuple[dict[str, str], ...]:
        # Each decision gets its own dicts: a caller may change what it was given.
        return tuple(dict(p) for p in self._packs)

    def invalid(self, source: Any, problems: list[InputProblem], start: int, evaluated_at: datetime) -> Decision:
        tenant, request, step_count = salvage_identity(self._decoded(source))
        violations = tuple(
            Violation(_step_index_of(p.pointer), INVALID_IR, f"{p.pointer or '/'}: {p.message}")
            for p in problems
        )
        return Decision(
            status=Status.REJECT, risk_tier=0, requires_approval=False,
            ir_hash=self._raw_digest(source),
            tenant_id=tenant, request_id=request, step_count=step_count,
            steps=(), violations=violations, high_risk_steps=(),
            packs=self._pack_refs(), engine=self.policy.engine.name, evaluated_at=evaluated_at,
            duration_us=(time.perf_counter_ns() - start) // 1000,
        )

    def failed(self, ir: IR, start: int, evaluated_at: datetime, message: str) -> Decision:
        try:
            digest = ir_hash(ir, self.hash_algorithm)
        except Exception:
            digest = self._raw_digest(repr(ir))
        return self.conclude(ir, digest, [], [Violation(None, EVALUATION_ERROR, message)], start, evaluated_at)

    def _decoded(self, source: Any) -> Any:
        """The refused input as JSON values, to attribute the REJECT; None when unreadable."""
        if not isinstance(source, bytes | str):
            return source
        try:
            return loads_strict(source, max_bytes=self.limits.max_bytes, max_depth=self.limits.max_depth)
        except Exception:
            return None

    def _raw_digest(self, source: Any) -> str:
        """A digest of input the model refused: canonical JSON when possible, else its bytes."""
        try:
            if isinstance(source, bytes):
                return digest_bytes(source, self.hash_algorithm)
            if isinstance(source, str):
                return digest_bytes(source.encode("utf-8", "surrogatepass"), self.hash_algorithm)
            return digest_object(source, self.hash_algorithm)
        except Exception:
            return digest_bytes(repr(source).encode("utf-8", "backslashreplace"), self.hash_algorithm)


def publish_decision(decision: Decision, bus: EventBus) -> None:
    """Publish the decision's `ir.validated_*` event; never raises."""
    try:
        event = new_event(decision.event_type, decision.event_payload(), tenant_id=decision.tenant_id,
                          correlation_id=decision.request_id, now=decision.evaluated_at)
        bus.publish(event)
    except Exception:  # publishing must never change or break a decision
        logger.exception("could not publish the decision event for request %s", decision.request_id)


def _step_index_of(pointer: str) -> int | None:
    parts = pointer.split("/")
    if len(parts) > 2 and parts[1] == "steps" and parts[2].isdigit():
        return int(parts[2])
    return None


def _reasons(result: StepResult) -> str:
    top = [h.reason for h in result.hits if h.mode == "enforce" and h.tier == result.tier]
    return "; ".join(dict.fromkeys(top)) or f"tier {result.tier}"
