"""The decision log: one JSON line per decision, with the IR it was made on, so real traffic can be
replayed against a candidate pack set (`jq -c .ir decisions.jsonl | irgov replay --packs NEW -`).

Like events, the log never changes a decision: a write that fails is logged and counted, and
the decision stands. Redaction (`decision_log_redact`) is applied before the line is written:

- `none`: the IR as received;
- `params`: every step's `params` keeps its keys, each value replaced by `"<redacted>"`
  (decisions of rules that read parameter values will differ on replay);
- `ir`: no IR at all (the line keeps the decision and the IR hash; it cannot be replayed).

Whatever the mode, a token-shaped string (`irgap_...`) is written as `irgap_<redacted>`: an IR
holding a token is refused anyway, and the log must not become a place to find one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError, IRInputError
from ..events.envelope import format_timestamp, uuid7
from ..model import IR
from ..storage import make_private_folder
from ..strict_json import loads_strict
from ..text_rules import redact_tokens_in
from .decision import Decision

__all__ = ["DECISION_LOG_REDACTIONS", "REDACTED", "DecisionLog", "redact_ir"]

logger = logging.getLogger(__name__)

DECISION_LOG_REDACTIONS = ("none", "params", "ir")
REDACTED = "<redacted>"


def redact_ir(ir: Any, mode: str) -> Any:
    """The IR as the log keeps it under `mode`; a value that is not an IR object is kept as is
    under `none` and `params` (an invalid IR is worth replaying too)."""
    if mode == "ir":
        return None
    if mode == "none" or not isinstance(ir, Mapping):
        return ir
    steps = ir.get("steps")
    if not isinstance(steps, list):
        return dict(ir)
    redacted = []
    for step in steps:
        if isinstance(step, Mapping) and isinstance(step.get("params"), Mapping):
            step = {**step, "params": {k: REDACTED for k in step["params"]}}
        redacted.append(step)
    return {**ir, "steps": redacted}


def _as_json_value(source: IR | Mapping[str, Any] | bytes | str, max_bytes: int) -> Any:
    if isinstance(source, IR):
        return source.to_dict()
    if isinstance(source, Mapping):
        return dict(source)
    try:
        return loads_strict(source if isinstance(source, bytes) else source.encode("utf-8"), max_bytes=max_bytes)
    except (IRInputError, UnicodeError):
        return None  # the decision (an INVALID_IR reject) says why


class DecisionLog:
    """Append decisions to a JSONL file (created mode 0600: it holds what plans contain)."""

    def __init__(self, path: str | os.PathLike[str], *, redact: str = "params", max_bytes: int = 8 * 1024 * 1024) -> None:
        if redact not in DECISION_LOG_REDACTIONS:
            raise ConfigError("`decision_log_redact` must be one of "
                              + ", ".join(f"`{m}`" for m in DECISION_LOG_REDACTIONS) + f", not `{redact}`")
        self.path = Path(path)
        self.redact = redact
        self.max_bytes = max_bytes
        self.written = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            make_private_folder(self.path.parent)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def record(self, decision: Decision, source: IR | Mapping[str, Any] | bytes | str, *,
               submitted_by: str | None = None, packs_digest: str | None = None,
               shadow: Mapping[str, Any] | None = None) -> bool:
        """Write one line; False (logged, counted) when it could not be written. Never raises."""
        try:
            now = datetime.now(UTC)
            line: dict[str, Any] = {
                "decision_id": str(uuid7(int(now.timestamp() * 1000))),
                "logged_at": format_timestamp(now),
                "submitted_by": submitted_by,
                "packs_digest": packs_digest,
                "redact": self.redact,
                "decision": decision.to_dict(),
                # An approval token never reaches the log, whatever the redaction.
                "ir": redact_tokens_in(redact_ir(_as_json_value(source, self.max_bytes), self.redact)),
            }
            if shadow is not None:
                line["shadow"] = dict(shadow)
            data = (json.dumps(line, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n").encode()
            with self._lock:
                fd = self._open()
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(f"short write of {written} of {len(data)} bytes")
                self.written += 1
            return True
        except Exception as exc:  # the log must never change or break a decision
            with self._lock:
                self.failed += 1
            logger.error("writing the decision log `%s` failed: %s", self.path, exc)
            return False

    def status(self) -> dict[str, Any]:
        return {"path": str(self.path), "redact": self.redact, "written": self.written, "failed": self.failed}

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
