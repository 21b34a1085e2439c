"""Shadow packs: a candidate set decides every IR beside the set in force and is never enforced.

A divergence (another status, tier or set of enforced violation codes) is counted and logged
as one line on `irgov_policy.audit.shadow`; the caller's decision is always the active set's.
The shadow decision costs as much as the real one, on the caller's path: turn it on to prove
a candidate, then off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from ..model import IR
from .active import PackSetHolder
from .decision import Decision

__all__ = ["ShadowEvaluator"]

logger = logging.getLogger(__name__)
audit_logger = logging.getLogger("irgov_policy.audit.shadow")


def _verdict(decision: Decision) -> tuple[str, int, tuple[str, ...]]:
    return decision.status, decision.risk_tier, tuple(sorted(decision.violation_codes()))


class ShadowEvaluator:
    """Decides with `holder`'s set (the shadow) and compares with the real decision."""

    def __init__(self, holder: PackSetHolder) -> None:
        self.holder = holder
        self.decisions = 0
        self.divergences = 0
        self.errors = 0
        self.last_divergence: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def compare(self, source: IR | Mapping[str, Any] | bytes | str, decision: Decision) -> dict[str, Any] | None:
        """The shadow's verdict on `source` beside `decision`; None if the shadow failed (logged,
        counted). Never raises and never publishes an event."""
        active = self.holder.active
        try:
            shadow = active.engine.evaluate(source)
        except Exception:  # evaluate never raises by contract; a shadow must not break a decision
            with self._lock:
                self.errors += 1
            logger.exception("the shadow pack set failed to decide")
            return None
        diverged = _verdict(shadow) != _verdict(decision)
        result = {"packs_digest": active.digest, "status": shadow.status, "risk_tier": shadow.risk_tier,
                  "violations": shadow.violation_codes(), "diverged": diverged}
        with self._lock:
            self.decisions += 1
            if diverged:
                self.divergences += 1
                self.last_divergence = {"tenant_id": decision.tenant_id, "request_id": decision.request_id,
                                        "ir_hash": decision.ir_hash, "active": decision.status,
                                        "shadow": shadow.status}
        if diverged:
            audit_logger.info("shadow packs %s diverge on ir %s of tenant %s: %s tier %s -> %s tier %s",
                              active.digest, decision.ir_hash or "(invalid)", decision.tenant_id or "-",
                              decision.status, decision.risk_tier, shadow.status, shadow.risk_tier)
        return result

    def status(self) -> dict[str, Any]:
        with self._lock:
            counts = {"decisions": self.decisions, "divergences": self.divergences, "errors": self.errors,
                      "last_divergence": self.last_divergence}
        return {**self.holder.status(), **counts}
