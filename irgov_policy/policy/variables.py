"""The CEL variables of a step rule, `step` and `ir`, built from the frozen IR."""

from __future__ import annotations

from typing import Any

from ..model import IR, Step

__all__ = ["ir_variables", "step_variables"]


def step_variables(step: Step, index: int) -> dict[str, Any]:
    """The `step` variable of CEL rules: every field, absent optional ones as null, plus `index`."""
    return {
        "index": index,
        "action": step.action,
        "provider": step.provider,
        "resource": step.resource,
        "params": step.params,
        "constraints": step.constraints,
        "idempotency_key": step.idempotency_key,
        "budget_cents": step.budget_cents,
        "step_id": step.step_id,
        "description": step.description,
    }


def ir_variables(ir: IR, with_steps: bool) -> dict[str, Any]:
    """The `ir` variable: IR fields and `step_count`; `steps` only for rules of scope `ir`
    (putting every step into every step's activation would make evaluation quadratic)."""
    out: dict[str, Any] = {
        "tenant_id": ir.tenant_id,
        "request_id": ir.request_id,
        "created_at": ir.created_at,
        "intent_summary": ir.intent_summary,
        "labels": dict(ir.labels),
        "step_count": len(ir.steps),
    }
    if with_steps:
        out["steps"] = [step_variables(s, i) for i, s in enumerate(ir.steps)]
    return out
