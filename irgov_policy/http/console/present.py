"""What the console's pages show, computed from the kernel's request views (their `to_dict`).

Pure functions over plain dicts: the pages and the live feed use the same rows, so the queue a
page renders and the one the feed pushes never differ. Every value stays a string or a number;
escaping is the template's (autoescape) and the script's (`textContent`) job, never this module's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["HISTORY_STATUSES", "QUEUE_STATUSES", "TIERS", "DetailModel", "QueueFilter", "detail_model",
           "duration_text", "history_entries", "queue_rows", "sort_by_urgency"]

#: what the queue's status filter offers ("requested" is the queue proper: waiting for a human)
QUEUE_STATUSES = ("requested", "pending", "consumed", "expired", "revoked")
#: what the history page shows: decided requests
HISTORY_STATUSES = ("pending", "consumed", "expired", "revoked")
TIERS = (0, 1, 2, 3)
#: raw IR text shown on the detail page beyond which it is cut, saying so
RAW_LIMIT = 200_000


@dataclass(frozen=True)
class QueueFilter:
    status: str = "requested"
    min_tier: int | None = None

    @classmethod
    def parse(cls, status: str | None, tier: str | None) -> QueueFilter:
        chosen = status if status in QUEUE_STATUSES else "requested"
        min_tier = int(tier) if tier is not None and tier.isdigit() and int(tier) in TIERS else None
        return cls(chosen, min_tier)

    def accepts(self, view: Mapping[str, Any]) -> bool:
        return self.min_tier is None or _int(view.get("risk_tier")) >= self.min_tier


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def duration_text(seconds: float | None) -> str:
    """`2 h 5 min`, `40 s`; an empty string when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def _expires(view: Mapping[str, Any]) -> datetime | None:
    """When the request's chance ends: its stated deadline, or a pending approval's expiry."""
    if view.get("deadline_at"):
        return parse_time(view.get("deadline_at"))
    approval = view.get("approval")
    if isinstance(approval, Mapping) and approval.get("status") == "pending":
        return parse_time(approval.get("expires_at"))
    return None


def sort_by_urgency(views: Iterable[Mapping[str, Any]], now: datetime) -> list[Mapping[str, Any]]:
    """Highest tier first; then the least time left; then the oldest."""
    def key(view: Mapping[str, Any]) -> tuple[int, float, float]:
        expires = _expires(view)
        left = (expires - now).total_seconds() if expires is not None else math.inf
        created = parse_time(view.get("requested_at"))
        return (-_int(view.get("risk_tier")), left, created.timestamp() if created else math.inf)

    return sorted(views, key=key)


def queue_rows(views: Iterable[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """One row per request, most urgent first: what the queue table and the live feed show."""
    rows = []
    for view in sort_by_urgency(views, now):
        created = parse_time(view.get("requested_at"))
        expires = _expires(view)
        left = view.get("time_left_seconds")
        rows.append({
            "request_id": str(view.get("request_id", "")),
            "tenant_id": str(view.get("tenant_id", "")),
            "status": str(view.get("status", "")),
            "risk_tier": _int(view.get("risk_tier")),
            "summary": _summary(view),
            "requested_by": str(view.get("requested_by") or ""),
            "requested_at": str(view.get("requested_at") or ""),
            "age": duration_text((now - created).total_seconds()) if created else "",
            "time_left": duration_text(left) if isinstance(left, int | float) else
            (duration_text((expires - now).total_seconds()) if expires else ""),
            "reason": str(view.get("reason") or ""),
        })
    return rows


def _summary(view: Mapping[str, Any]) -> str:
    for key in ("intent_summary", "summary"):
        value = view.get(key)
        if isinstance(value, str) and value:
            return value
    return str(view.get("ir_hash") or "")


@dataclass(frozen=True)
class StepRow:
    index: int
    step_id: str
    action: str
    provider: str
    resource: str
    params: str
    constraints: str
    tier: int
    escalates: bool
    hits: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class DetailModel:
    view: Mapping[str, Any]
    summary: str
    steps: tuple[StepRow, ...]
    steps_known: bool
    violations: tuple[dict[str, str], ...]
    packs: tuple[dict[str, str], ...]
    reasons: tuple[str, ...]
    raw_ir: str
    history: tuple[dict[str, str], ...]
    submitted_by: tuple[str, ...]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1)


def _hit(hit: Any) -> dict[str, str]:
    if not isinstance(hit, Mapping):
        return {"pack": "", "rule": "", "tier": "", "reason": _text(hit), "mode": ""}
    return {"pack": _text(hit.get("pack")), "rule": _text(hit.get("rule")), "tier": _text(hit.get("tier")),
            "reason": _text(hit.get("reason")), "mode": _text(hit.get("mode") or "enforce")}


def _rendered(value: Any) -> str:
    """A value as text; a bounded rendering (`text`, `truncated`, `size`) says when it was cut."""
    if isinstance(value, Mapping) and set(value) >= {"text", "truncated"}:
        text = _text(value.get("text"))
        if value.get("truncated"):
            text += f" \u2026 (cut: {_int(value.get('size'))} bytes in all)"
        return text
    return _text(value)


def _step_items(view: Mapping[str, Any]) -> list[Any] | None:
    steps = view.get("steps")
    if isinstance(steps, Mapping):  # one page of the recorded steps
        items = steps.get("items")
        return list(items) if isinstance(items, list) else None
    return list(steps) if isinstance(steps, list) else None


def _decision(view: Mapping[str, Any]) -> Mapping[str, Any]:
    decision = view.get("decision")
    return decision if isinstance(decision, Mapping) else view


def _steps(view: Mapping[str, Any], threshold: int) -> tuple[StepRow, ...]:
    steps = _step_items(view)
    if steps is None:
        return ()
    high = {h.get("step_index") for h in _decision(view).get("high_risk_steps") or () if isinstance(h, Mapping)}
    rows = []
    for position, step in enumerate(steps):
        if not isinstance(step, Mapping):
            continue
        index = _int(step.get("index"), position)
        tier = _int(step.get("tier", step.get("risk_tier")))
        flagged = step.get("high_risk")
        rows.append(StepRow(
            index=index, step_id=_text(step.get("step_id")), action=_text(step.get("action")),
            provider=_text(step.get("provider")), resource=_rendered(step.get("resource")),
            params=_rendered(step.get("params")), constraints=_rendered(step.get("constraints")), tier=tier,
            escalates=bool(flagged) if isinstance(flagged, bool) else (index in high or tier >= threshold),
            hits=tuple(_hit(h) for h in step.get("hits") or ())))
    return tuple(rows)


def _raw(view: Mapping[str, Any]) -> str:
    raw = view.get("ir")
    if raw is None:
        steps = _step_items(view)
        if steps is None:
            return ""
        # The plan as recorded with the decision (bounded renderings of params and constraints).
        raw = {"tenant_id": view.get("tenant_id"), "request_id": view.get("ir_request_id"),
               "intent_summary": view.get("intent_summary"), "steps": steps}
    text = _text(raw)
    if len(text) > RAW_LIMIT:
        text = text[:RAW_LIMIT] + f"\n... cut at {RAW_LIMIT} characters; the API has the whole request"
    return text


def detail_model(view: Mapping[str, Any], *, escalation_tier: int = 2) -> DetailModel:
    steps = _steps(view, escalation_tier)
    decision = _decision(view)
    reasons: list[str] = []
    for high in decision.get("high_risk_steps") or ():
        if isinstance(high, Mapping):
            reasons.append(f"step {_int(high.get('step_index'))} ({_text(high.get('action'))} on "
                           f"{_text(high.get('provider'))}) is tier {_int(high.get('risk_tier'))}: "
                           f"{_text(high.get('reason'))}")
    if not reasons:
        reasons = [f"step {s.index} ({s.action} on {s.provider}): {h['reason']}"
                   for s in steps if s.escalates for h in s.hits if h["mode"] != "audit"]
    submitted = view.get("submitted_by")
    submitters = tuple(str(s) for s in submitted) if isinstance(submitted, list | tuple) else \
        ((str(submitted),) if isinstance(submitted, str) and submitted else ())
    findings = [*(decision.get("violations") or ()), *(decision.get("audit_violations") or ())]
    return DetailModel(
        view=view, summary=_summary(view), steps=steps, steps_known=_step_items(view) is not None,
        violations=tuple({"step": _text(v.get("step_index")), "code": _text(v.get("code")),
                          "message": _text(v.get("message")), "mode": _text(v.get("mode"))}
                         for v in findings if isinstance(v, Mapping)),
        packs=tuple({"name": _text(p.get("name") or p.get("pack")), "version": _text(p.get("version")),
                     "digest": _text(p.get("digest"))}
                    for p in decision.get("packs") or () if isinstance(p, Mapping)),
        reasons=tuple(reasons), raw_ir=_raw(view), history=tuple(history_entries(view)), submitted_by=submitters)


def history_entries(view: Mapping[str, Any]) -> list[dict[str, str]]:
    """What happened to a request, oldest first: who did what, when."""
    entries: list[dict[str, str]] = []

    def add(what: str, who: Any, when: Any, note: Any = None) -> None:
        if when:
            entries.append({"what": what, "who": _text(who), "when": _text(when), "note": _text(note)})

    add("requested", view.get("requested_by"), view.get("requested_at"), view.get("reason"))
    add("granted", view.get("granted_by"), view.get("granted_at"))
    approval = view.get("approval")
    if isinstance(approval, Mapping):
        add("token claimed", view.get("claimed_by") or approval.get("claimed_by"),
            view.get("claimed_at") or approval.get("claimed_at"))
        add("consumed", approval.get("consumed_by"), approval.get("consumed_at"))
        add("expired", "", approval.get("expired_at"))
        add("approval revoked", approval.get("revoked_by"), approval.get("revoked_at"),
            approval.get("revoke_reason"))
    denied = "denied" if not view.get("granted_at") else "revoked"
    add(denied, view.get("revoked_by"), view.get("revoked_at"), view.get("revoke_reason"))
    entries.sort(key=lambda e: e["when"])
    return entries
