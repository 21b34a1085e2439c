"""The kernel's pack lifecycle: the set in force and its reloads (on file changes, SIGHUP in
`irgov serve`, `POST /packs/reload`, or a call), shadow packs, and the decision log.

Each decision reads the set in force once, so a reload never changes a decision in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ..config import GovernanceConfig
from ..events import EventBus
from ..model import IR
from ..observability import metrics, tracing
from ..policy.active import PackSetHolder, ReloadResult
from ..policy.decision import Decision
from ..policy.decision_log import DecisionLog
from ..policy.evaluator import BUDGET_EXCEEDED, RULE_ERROR, PolicyEngine
from ..policy.inventory import packs_in_force
from ..policy.shadow import ShadowEvaluator
from ..policy.sources import load_pack_sources
from ..policy.watch import PackWatcher
from .build import build_engine, compose_engine, prove_engine

__all__ = ["PackLifecycle"]

logger = logging.getLogger(__name__)


class PackLifecycle:
    """The active pack set (`holder`), the optional shadow set and decision log, and the watcher."""

    def __init__(self, config: GovernanceConfig, engine: PolicyEngine | None = None, *,
                 bus: EventBus | None = None) -> None:
        self.config = config
        self.holder = PackSetHolder(engine if engine is not None else build_engine(config),
                                    lambda: prove_engine(config), bus=bus)
        self.shadow: ShadowEvaluator | None = None
        #: called after each reload with its result and trigger (`irgov serve --workers` passes
        #: an API reload on to the other workers)
        self.on_reload: Callable[[ReloadResult], None] | None = None
        if config.shadow_packs:
            sources = config.shadow_packs

            def load_shadow() -> PolicyEngine:
                # A shadow set is never enforced: it is loaded, not gated by lint and tests.
                shadow_config = replace(config, packs=sources)
                return compose_engine(shadow_config, load_pack_sources(sources))

            self.shadow = ShadowEvaluator(PackSetHolder(load_shadow(), load_shadow))
        self.decision_log = (DecisionLog(config.decision_log, redact=config.decision_log_redact,
                                         max_bytes=config.max_bytes)
                             if config.decision_log else None)
        self._watcher: PackWatcher | None = None

    @property
    def engine(self) -> PolicyEngine:
        return self.holder.engine

    def decide(self, source: IR | Mapping[str, Any] | bytes | str, *, bus: EventBus | None,
               submitted_by: str | None) -> Decision:
        """Decide with the set in force (taken once), then shadow and log; never raises."""
        active = self.holder.active
        with tracing.span("validate") as span:
            decision = active.engine.evaluate(source, bus=bus)
            tracing.set_attributes(span, status=str(decision.status), tenant_id=decision.tenant_id or None,
                                   ir_hash=decision.ir_hash or None, pack_digest=active.digest)
        codes = decision.violation_codes()
        metrics.decision(str(decision.status), active.digest, decision.duration_us / 1e6,
                         rule_errors=codes.count(RULE_ERROR), budget_hit=BUDGET_EXCEEDED in codes)
        shadow = self.shadow.compare(source, decision) if self.shadow is not None else None
        if self.decision_log is not None:
            self.decision_log.record(decision, source, submitted_by=submitted_by, packs_digest=active.digest,
                                     shadow=shadow)
        return decision

    def reload(self, *, by: str, trigger: str = "call") -> ReloadResult:
        """Reload the active set (proved first; the last good one stays on failure) and the
        shadow set. The result is the active set's."""
        result = self.holder.reload(by=by, trigger=trigger)
        metrics.pack_reload(result.ok)
        listener = self.on_reload
        if listener is not None:
            try:
                listener(result)
            except Exception:  # the reload stands; what follows it is the listener's to report
                logger.exception("the pack reload listener failed")
        if self.shadow is not None:
            shadow = self.shadow.holder.reload(by=by, trigger=trigger)
            if not shadow.ok:
                logger.error("reloading the shadow packs failed, keeping %s: %s", shadow.old_digest, shadow.error)
        return result

    def watched_sources(self) -> list[str]:
        return [*self.config.packs, *self.config.shadow_packs]

    def start_watching(self) -> None:
        """Watch the configured sources (none for the shipped and plugin packs: they change with
        the installed code, which needs a restart anyway)."""
        if self._watcher is not None or not self.config.watch_packs or not self.watched_sources():
            return

        def changed(paths: set[str]) -> None:
            logger.info("rule pack files changed (%s): reloading", ", ".join(sorted(paths)))
            self.reload(by="watch", trigger="watch")

        self._watcher = PackWatcher(self.watched_sources(), changed).start()

    def stop_watching(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    @property
    def watching(self) -> bool:
        return self._watcher is not None

    def status(self) -> dict[str, Any]:
        """What `GET /packs` and `irgov packs` show: the set in force with each pack's
        description, the reload counters and errors, the shadow set and the decision log."""
        active = self.holder.active
        # the set fields of one active set, so a reload meanwhile cannot mix two
        status = {**self.holder.status(), **active.to_dict(), "packs": packs_in_force(active.engine)}
        status["watching"] = self.watching
        status["shadow"] = None if self.shadow is None else self.shadow.status()
        status["decision_log"] = None if self.decision_log is None else self.decision_log.status()
        return status

    def close(self) -> None:
        self.stop_watching()
        if self.decision_log is not None:
            self.decision_log.close()
