"""What a human needs to judge an approval request: kept with the decision, shown page by page.

Nobody can responsibly approve `sha256:ce4c...`. So an ESCALATE decision is recorded with a
snapshot (`decision_snapshot`): the IR's request id and intent summary, every step (action,
provider, resource, bounded renderings of its params and constraints), each step's tier with its
rule hits and reasons, the high-risk steps, every violation (audit mode apart), the packs with
their digests and the engine. It lives in the ledger beside the decision, so any worker of any
backend renders the same request.

Nothing is cut silently: a rendering longer than its bound says `truncated` and gives the full
`size` in bytes; the snapshot as a whole is bounded (`MAX_SNAPSHOT_CHARS`), and steps past the
bound are counted (`steps_recorded` below `step_count`) with the reason. `RequestDetails` is
`GET /approvals/{id}`, its steps one page at a time; `list_item` is one entry of `GET /approvals`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..approvals.ledger_records import DecisionEntry, RequestState
from ..approvals.records import ApprovalStatus
from ..errors import ApprovalError
from ..events import format_timestamp
from ..model import IR
from ..policy.decision import Decision
from ..text_rules import redact_tokens
from .views import ApprovalRequestView, format_us

__all__ = [
    "DEFAULT_STEPS_PAGE",
    "MAX_SNAPSHOT_CHARS",
    "MAX_STEPS_PAGE",
    "SNAPSHOT_VERSION",
    "SORTS",
    "RequestDetails",
    "check_page",
    "decision_snapshot",
    "list_item",
    "read_snapshot",
    "render",
    "summary_of",
    "urgency",
]

logger = logging.getLogger(__name__)

SNAPSHOT_VERSION = 1
#: the bound of a whole snapshot (JSON text): a 10,000-step IR must not put megabytes in each row
MAX_SNAPSHOT_CHARS = 1_000_000
#: bounds of one rendering, in characters
PARAMS_CHARS = 2000
CONSTRAINTS_CHARS = 1000
TEXT_CHARS = 2000
LABELS_CHARS = 2000
#: violations kept (a REJECT-worthy IR can have one per step); the total is kept too
MAX_VIOLATIONS = 200
DEFAULT_STEPS_PAGE = 50
MAX_STEPS_PAGE = 500
#: how `GET /approvals` orders: newest first, or most urgent first (tier, then time left, then age)
SORTS = ("newest", "urgent")
#: the intent summary kept with every decision entry, for lists (the snapshot has it whole)
SUMMARY_CHARS = 300


def render(value: Any, limit: int) -> dict[str, Any]:
    """A bounded rendering of an IR value: `text` (JSON for anything but a string), whether it
    was `truncated`, and the full `size` in UTF-8 bytes."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    # The model refuses tokens in an IR; a message or rule reason might still quote one.
    text = redact_tokens(text)
    size = len(text.encode("utf-8", "surrogatepass"))
    if len(text) <= limit:
        return {"text": text, "truncated": False, "size": size}
    return {"text": text[:limit], "truncated": True, "size": size}


def _step(ir: IR, decision: Decision, index: int, high_risk: set[int]) -> dict[str, Any]:
    step = ir.steps[index]
    result = next((r for r in decision.steps if r.index == index), None)
    return {
        "index": index,
        "step_id": step.step_id,
        "action": step.action,
        "provider": step.provider,
        "resource": render(step.resource, TEXT_CHARS),
        "description": None if step.description is None else render(step.description, TEXT_CHARS),
        "params": render(dict(step.params), PARAMS_CHARS),
        "constraints": render(dict(step.constraints), CONSTRAINTS_CHARS),
        "tier": None if result is None else result.tier,
        "high_risk": index in high_risk,
        "hits": [] if result is None else [h.to_dict() for h in result.hits],
    }


def decision_snapshot(decision: Decision, ir: IR) -> str:
    """The bounded JSON text kept with an ESCALATE decision (see the module's docstring)."""
    high_risk = {h.step_index for h in decision.high_risk_steps}
    enforced = [v.to_dict() for v in decision.violations if v.mode == "enforce"]
    audit = [v.to_dict() for v in decision.violations if v.mode != "enforce"]
    head: dict[str, Any] = {
        "version": SNAPSHOT_VERSION,
        "ir_request_id": ir.request_id,
        "intent_summary": ir.intent_summary,
        "created_at": ir.created_at,
        "labels": render(dict(ir.labels), LABELS_CHARS) if ir.labels else None,
        "status": decision.status,
        "risk_tier": decision.risk_tier,
        "step_count": len(ir.steps),
        "high_risk_steps": [h.to_dict() for h in decision.high_risk_steps],
        "violations": enforced[:MAX_VIOLATIONS],
        "violations_total": len(enforced),
        "audit_violations": audit[:MAX_VIOLATIONS],
        "audit_violations_total": len(audit),
        "packs": [dict(p) for p in decision.packs],
        "engine": decision.engine,
        "evaluated_at": format_timestamp(decision.evaluated_at),
        "notes": list(decision.notes),
    }
    used = len(json.dumps(head, ensure_ascii=False))
    steps: list[dict[str, Any]] = []
    for index in range(len(ir.steps)):
        step = _step(ir, decision, index, high_risk)
        size = len(json.dumps(step, ensure_ascii=False)) + 2
        if used + size > MAX_SNAPSHOT_CHARS:
            break
        used += size
        steps.append(step)
    head["steps_recorded"] = len(steps)
    head["steps"] = steps
    return json.dumps(head, ensure_ascii=False, separators=(",", ":"))


def summary_of(text: str | None) -> str | None:
    """The intent summary as a list shows it (the details show it whole)."""
    if text is None or len(text) <= SUMMARY_CHARS:
        return text
    return text[:SUMMARY_CHARS - 1] + "\u2026"


def read_snapshot(entry: DecisionEntry | None) -> dict[str, Any] | None:
    """The snapshot of `entry`, or None when there is none or it cannot be read (logged)."""
    if entry is None or entry.snapshot is None:
        return None
    try:
        data = json.loads(entry.snapshot)
    except ValueError as exc:
        logger.error("the snapshot of the decision on ir %s is not valid json: %s", entry.ir_hash, exc)
        return None
    if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
        logger.error("the snapshot of the decision on ir %s has an unknown version", entry.ir_hash)
        return None
    return data


def deadline(view: ApprovalRequestView, retention_us: int) -> tuple[str | None, int | None]:
    """What ends the request's chance to be acted on, and when: a pending approval's expiry
    (it must be consumed by then), a waiting request's purge from the ledger; else nothing."""
    request = view.request
    if request.state is RequestState.REQUESTED:
        return "request_purged", request.created_us + retention_us
    if view.approval is not None and view.approval.status is ApprovalStatus.PENDING:
        return "approval_expires", int(view.approval.expires_at.timestamp() * 1_000_000)
    return None, None


def list_item(view: ApprovalRequestView, *, now_us: int, retention_us: int) -> dict[str, Any]:
    """One entry of a list: the request as `to_dict` gives it, plus its IR's request id and
    intent summary (shortened), the step count, the age and the time left."""
    what, until_us = deadline(view, retention_us)
    decision = view.decision
    return {
        **view.to_dict(),
        "ir_request_id": None if decision is None else decision.request_id,
        "intent_summary": None if decision is None else summary_of(decision.intent_summary),
        "step_count": None if decision is None else decision.step_count,
        "age_seconds": max(0, (now_us - view.request.created_us) // 1_000_000),
        "deadline": what,
        "deadline_at": format_us(until_us),
        "time_left_seconds": None if until_us is None else max(0, (until_us - now_us) // 1_000_000),
    }


def urgency(view: ApprovalRequestView, *, now_us: int, retention_us: int) -> tuple[int, int, int, str]:
    """The sort key of "most urgent first": highest tier, then least time left (none last),
    then oldest."""
    _, until_us = deadline(view, retention_us)
    left = (until_us - now_us) if until_us is not None else 2**62
    return (-view.request.risk_tier, left, view.request.created_us, view.request.request_id)


def check_page(offset: object, limit: object) -> tuple[int, int]:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ApprovalError(f"`steps_offset` must be an integer of at least 0, not `{offset!r}`")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_STEPS_PAGE:
        raise ApprovalError(f"`steps_limit` must be an integer from 1 to {MAX_STEPS_PAGE}, not `{limit!r}`")
    return offset, limit


def _missing(view: ApprovalRequestView, entry: DecisionEntry | None) -> str:
    if entry is None:
        if view.request.reason is not None and view.request.reason.startswith("break-glass: "):
            return "minted by break-glass: no decision was made on this ir"
        return "the decision on this ir is no longer in the ledger"
    return "the decision was recorded without details (by an earlier version)"


@dataclass(frozen=True)
class RequestDetails:
    """`GET /approvals/{id}`: the request, its approval, the decision with one page of steps,
    who submitted the IR, and the TTL a grant would get."""

    view: ApprovalRequestView
    snapshot: Mapping[str, Any] | None
    submitted_by: Sequence[str]
    default_ttl: int | float
    max_ttl: int | float
    steps_offset: int
    steps_limit: int
    now_us: int
    retention_us: int
    grant_refused: str | None = None
    """for the principal who asked: why separation of duties keeps them from granting it"""

    def _steps(self) -> dict[str, Any]:
        snap = self.snapshot
        recorded: list[Any] = list(snap["steps"]) if snap is not None else []
        total: int | None = snap["step_count"] if snap is not None else None
        end = self.steps_offset + self.steps_limit
        omitted = None
        if total is not None and len(recorded) < total:
            omitted = (f"steps from index {len(recorded)} on are not recorded: the details of a decision are "
                       f"bounded to {MAX_SNAPSHOT_CHARS} characters")
        return {
            "offset": self.steps_offset,
            "limit": self.steps_limit,
            "total": total,
            "recorded": len(recorded),
            "next_offset": end if end < len(recorded) else None,
            "omitted": omitted,
            "items": recorded[self.steps_offset:end],
        }

    def to_dict(self) -> dict[str, Any]:
        out = list_item(self.view, now_us=self.now_us, retention_us=self.retention_us)
        snap = self.snapshot
        entry = self.view.decision
        if snap is not None:
            out["intent_summary"] = snap["intent_summary"]  # whole: lists shorten it
        decision: dict[str, Any] | None = None
        if snap is not None and entry is not None:
            decision = {
                "status": entry.status,
                "risk_tier": entry.risk_tier,
                "decided_at": format_us(entry.decided_us),
                **{k: snap[k] for k in ("created_at", "labels", "high_risk_steps", "violations", "violations_total",
                                        "audit_violations", "audit_violations_total", "packs", "engine",
                                        "evaluated_at", "notes")},
            }
        out.update({
            "details_missing": None if snap is not None else _missing(self.view, entry),
            "decision": decision,
            "submitted_by": sorted(self.submitted_by),
            "grant_ttl": {"default_seconds": self.default_ttl, "max_seconds": self.max_ttl},
            "grant_refused": self.grant_refused,
            "steps": self._steps(),
        })
        return out
