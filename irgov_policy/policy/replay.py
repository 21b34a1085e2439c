"""Replay: decide recorded IRs under the pack set in force and under a candidate set, and report
every decision that would change, before the candidate ships.

A decision changes when its status, its risk tier or its enforced violation codes differ. The
rules responsible are those that fired under one set and not under the other (a hit or a
violation, in any step), named `pack/rule` and marked `+` (fires only under the new set) or
`-` (fired only under the current one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .decision import Decision
from .evaluator import PolicyEngine

__all__ = ["ReplayChange", "ReplayReport", "replay_lines"]


@dataclass(frozen=True)
class ReplayChange:
    """One IR whose decision differs between the current and the new pack set."""

    line: int
    request_id: str | None
    ir_hash: str | None
    old_status: str
    old_tier: int
    new_status: str
    new_tier: int
    rules: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "request_id": self.request_id, "ir_hash": self.ir_hash,
                "old": {"status": self.old_status, "tier": self.old_tier},
                "new": {"status": self.new_status, "tier": self.new_tier}, "rules": list(self.rules)}


@dataclass
class ReplayReport:
    """Every IR replayed, the decisions that changed, and a count per (old, new) status pair."""

    decided: int = 0
    changes: list[ReplayChange] = field(default_factory=list)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    current_packs: list[dict[str, str]] = field(default_factory=list)
    new_packs: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decided": self.decided,
            "changed": len(self.changes),
            "changes": [c.to_dict() for c in self.changes],
            "summary": [{"from": old, "to": new, "count": count}
                        for (old, new), count in sorted(self.transitions.items())],
            "packs": {"current": self.current_packs, "new": self.new_packs},
        }


def _fired(decision: Decision) -> set[str]:
    fired = {f"{hit.pack}/{hit.rule}" for step in decision.steps for hit in step.hits}
    fired |= {f"{v.pack or '-'}/{v.rule}" for v in decision.violations if v.rule is not None}
    return fired


def _outcome(decision: Decision) -> tuple[str, int, list[str]]:
    return decision.status, decision.risk_tier, sorted(v.code for v in decision.enforced_violations)


def _compare(line: int, old: Decision, new: Decision) -> ReplayChange | None:
    if _outcome(old) == _outcome(new):
        return None
    before, after = _fired(old), _fired(new)
    rules = tuple([f"+{r}" for r in sorted(after - before)] + [f"-{r}" for r in sorted(before - after)])
    return ReplayChange(line, new.request_id, new.ir_hash, old.status, old.risk_tier, new.status,
                        new.risk_tier, rules)


def replay_lines(lines: Iterable[tuple[int, bytes]], current: PolicyEngine, new: PolicyEngine) -> ReplayReport:
    """Decide each `(line number, IR JSON)` under both engines. An input that is not a valid IR
    is decided (REJECT `INVALID_IR`) like any other, so it changes only if a set treats it
    differently."""
    report = ReplayReport(current_packs=current.policy.pack_refs(), new_packs=new.policy.pack_refs())
    for number, data in lines:
        old_decision, new_decision = current.evaluate(data), new.evaluate(data)
        report.decided += 1
        report.transitions[(old_decision.status, new_decision.status)] += 1
        change = _compare(number, old_decision, new_decision)
        if change is not None:
            report.changes.append(change)
    return report
