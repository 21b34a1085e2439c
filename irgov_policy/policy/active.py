"""The pack set in force, replaced atomically, with last-known-good reloads.

Readers take `holder.engine` once per decision: the swap is one reference assignment, so a
decision in flight finishes on the set it started with while the next one sees the new set.
A reload proves its candidate first (`prove`: load, lint, policy tests); when that fails the set
in force stays, and the failure is kept for `status()` until a reload succeeds. Every change of
the set in force is an audit log line and an `ir.packs_reloaded` event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import IrgovError
from ..events.bus import EventBus
from ..events.envelope import format_timestamp, new_event
from ..events.types import ExtensionEventType
from ..hashing import digest_object
from .evaluator import PolicyEngine

__all__ = ["RELOAD_TRIGGERS", "ActivePackSet", "PackSetHolder", "ReloadResult", "pack_set_digest"]

logger = logging.getLogger(__name__)
audit_logger = logging.getLogger("irgov_policy.audit.packs")

RELOAD_TRIGGERS = ("watch", "signal", "api", "call")


def pack_set_digest(engine: PolicyEngine) -> str:
    """`sha256:` over the sorted (name, version, digest) of every pack: names the set in force."""
    return digest_object(sorted(engine.policy.pack_refs(), key=lambda r: (r["name"], r["digest"])))


@dataclass(frozen=True)
class ActivePackSet:
    engine: PolicyEngine
    digest: str
    loaded_at: datetime
    loaded_by: str

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "loaded_at": format_timestamp(self.loaded_at), "loaded_by": self.loaded_by,
                "engine": self.engine.engine_name, "packs": self.engine.policy.pack_refs()}


@dataclass(frozen=True)
class ReloadResult:
    """What one reload did: `ok` (the candidate was proved), `changed` (the set in force changed)."""

    ok: bool
    changed: bool
    trigger: str
    by: str
    at: datetime
    old_digest: str
    new_digest: str | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "changed": self.changed, "trigger": self.trigger, "by": self.by,
                "at": format_timestamp(self.at), "old_digest": self.old_digest, "new_digest": self.new_digest,
                "error": self.error}


class PackSetHolder:
    """Holds the active set; `reload()` proves a candidate with `prove()` and swaps it in."""

    def __init__(self, engine: PolicyEngine, prove: Callable[[], PolicyEngine], *, bus: EventBus | None = None,
                 loaded_by: str = "start") -> None:
        self._prove = prove
        self._bus = bus
        self._active = ActivePackSet(engine, pack_set_digest(engine), datetime.now(UTC), loaded_by)
        self._lock = threading.Lock()  # one reload at a time; readers never take it
        self.last_result: ReloadResult | None = None
        self.last_error: ReloadResult | None = None
        self.reloads = 0
        self.failed_reloads = 0
        self._listeners: list[Callable[[ActivePackSet, ActivePackSet], None]] = []

    @property
    def active(self) -> ActivePackSet:
        return self._active

    @property
    def engine(self) -> PolicyEngine:
        return self._active.engine

    def on_change(self, listener: Callable[[ActivePackSet, ActivePackSet], None]) -> None:
        """Call `listener(old, new)` after each change of the set in force."""
        self._listeners.append(listener)

    def reload(self, *, by: str, trigger: str = "call") -> ReloadResult:
        """Prove the packs as they now are and put them in force; never raises for a bad
        candidate (the result says why and the set in force stays)."""
        if trigger not in RELOAD_TRIGGERS:
            raise ValueError(f"unknown reload trigger `{trigger}`")
        with self._lock:
            old = self._active
            at = datetime.now(UTC)
            try:
                engine = self._prove()
            except IrgovError as exc:
                return self._failed(old, by, trigger, at, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            except Exception as exc:  # a candidate must never take the server down
                logger.exception("reloading the rule packs failed unexpectedly")
                return self._failed(old, by, trigger, at, f"unexpected error: {type(exc).__name__}")
            engine.limits = old.engine.limits
            digest = pack_set_digest(engine)
            changed = digest != old.digest
            result = ReloadResult(True, changed, trigger, by, at, old.digest, digest)
            self.last_result = result
            self.last_error = None
            self.reloads += 1
            if not changed:
                logger.info("rule packs reloaded by %s (%s): unchanged, %s", by, trigger, digest)
                return result
            new = ActivePackSet(engine, digest, at, by)
            self._active = new
        audit_logger.info("rule pack set changed by %s (%s): %s -> %s", by, trigger, old.digest, digest)
        if self._bus is not None:
            self._bus.publish(new_event(ExtensionEventType.PACKS_RELOADED, {
                "old_digest": old.digest, "new_digest": digest,
                "old_packs": old.engine.policy.pack_refs(), "new_packs": engine.policy.pack_refs(),
                "reloaded_by": by, "trigger": trigger, "reloaded_at": format_timestamp(at),
            }, tenant_id=None, now=at))
        for listener in self._listeners:
            try:
                listener(old, new)
            except Exception:
                logger.exception("a pack-change listener failed")
        return result

    def _failed(self, old: ActivePackSet, by: str, trigger: str, at: datetime, error: str) -> ReloadResult:
        result = ReloadResult(False, False, trigger, by, at, old.digest, None, error)
        self.last_result = result
        self.last_error = result
        self.failed_reloads += 1
        logger.error("reloading the rule packs (by %s, %s) failed, keeping %s: %s", by, trigger, old.digest, error)
        return result

    def status(self) -> dict[str, Any]:
        """The set in force, the last reload and the last failed one (None once a reload succeeds)."""
        return {**self._active.to_dict(),
                "reloads": self.reloads, "failed_reloads": self.failed_reloads,
                "last_reload": None if self.last_result is None else self.last_result.to_dict(),
                "last_reload_error": None if self.last_error is None else self.last_error.to_dict()}
