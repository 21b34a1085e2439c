"""Python checks contributed by plugins through `irgov_register_checks(register)`.

A check contributes findings like a rule does: a tier hit (`tier` and `reason`) or a violation
(`code`, `message`, `severity`). `register(check)` accepts:

- an object with a `name` and `check_step(step, index, ir)` and/or `check_ir(ir)` methods, each
  returning an iterable of `Finding`;
- or a plain function `check(step, index, ir) -> Iterable[Finding]` (named after the function).

A check that raises is a `RULE_ERROR` violation, like a CEL rule that errors: fail closed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import PolicyError
from ..model import IR, Step

__all__ = ["Finding", "PythonCheck", "as_check"]


@dataclass(frozen=True)
class Finding:
    """One result of a check. Set `tier` (0-3) and `reason`, or `code` and `message`."""

    rule: str
    tier: int | None = None
    reason: str | None = None
    code: str | None = None
    message: str | None = None
    severity: str = "ERROR"
    mode: str = "enforce"

    def problem(self) -> str | None:
        """Why this finding is malformed, or None."""
        if (self.tier is None) == (self.code is None):
            return "a finding has either `tier` or `code`"
        if self.tier is not None and (isinstance(self.tier, bool) or self.tier not in (0, 1, 2, 3)):
            return f"tier `{self.tier}` is not 0-3"
        if self.severity not in ("ERROR", "WARNING"):
            return f"severity `{self.severity}` is not `ERROR` or `WARNING`"
        if self.mode not in ("enforce", "audit"):
            return f"mode `{self.mode}` is not `enforce` or `audit`"
        return None


StepCheck = Callable[[Step, int, IR], Iterable[Finding]]
IRCheck = Callable[[IR], Iterable[Finding]]


@dataclass(frozen=True)
class PythonCheck:
    """A normalised check: its name (reported as pack `plugin:NAME`) and its callables."""

    name: str
    step: StepCheck | None = None
    ir: IRCheck | None = None

    @property
    def pack(self) -> str:
        return f"plugin:{self.name}"


def as_check(candidate: Any) -> PythonCheck:
    """Normalise what a plugin registered; refuse anything that is not a check."""
    if isinstance(candidate, PythonCheck):
        return candidate
    step = getattr(candidate, "check_step", None)
    whole = getattr(candidate, "check_ir", None)
    if callable(step) or callable(whole):
        name = getattr(candidate, "name", None) or type(candidate).__name__
        return PythonCheck(str(name), step if callable(step) else None, whole if callable(whole) else None)
    if callable(candidate):
        return PythonCheck(str(getattr(candidate, "name", None) or getattr(candidate, "__name__", "check")),
                           candidate, None)
    raise PolicyError(f"registered check `{candidate!r}` is neither callable nor has `check_step`/`check_ir`")
