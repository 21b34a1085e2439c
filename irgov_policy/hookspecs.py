"""Every hook a plugin can implement, and the types of what each hook hands over.

Hooks are prefixed `irgov_`; arguments are only ever added. Hooks that contribute objects receive
a `register` callback rather than returning values, so a plugin can contribute any number of
objects and the caller controls validation and conflicts. The callbacks and the objects they take
are typed here (`RegisterCheck`, `EventSink`, ...), so `mypy` checks a plugin that annotates its
hook arguments with them::

    from irgov_policy.hookspecs import RegisterCheck, hookimpl

    @hookimpl
    def irgov_register_checks(register: RegisterCheck) -> None:
        register(my_check)      # mypy refuses a `my_check` whose signature is not a check's

Each hook is documented in `docs/plugins.md`; a test fails when the page and this module disagree.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import pluggy

# Type-only imports: the hooks hand over objects of the layers above (events, policy), which
# must not become a runtime dependency of this core module (tests/core/test_layers.py).
if TYPE_CHECKING:
    from .events.envelope import Event
    from .hashing import HashBackend
    from .model import IR, Step
    from .policy.checks import Finding

__all__ = [
    "PROJECT_NAME",
    "CelFunction",
    "Check",
    "CheckFunction",
    "EventSink",
    "IRCheck",
    "RegisterCelFunction",
    "RegisterCheck",
    "RegisterEventSink",
    "RegisterHashBackend",
    "RegisterRulePack",
    "SinkFactory",
    "StepCheck",
    "hookimpl",
    "hookspec",
]

PROJECT_NAME = "irgov_policy"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- what the hooks hand over -------------------------------------------------------------------

class StepCheck(Protocol):
    """A check called once per step. Its context is the step, the step's 0-based index in the
    IR and the whole IR, all frozen. It returns (or yields) the findings for that step."""

    @property
    def name(self) -> str: ...

    def check_step(self, step: Step, index: int, ir: IR) -> Iterable[Finding]: ...


class IRCheck(Protocol):
    """A check called once per IR, for reasoning across steps; its findings carry no step."""

    @property
    def name(self) -> str: ...

    def check_ir(self, ir: IR) -> Iterable[Finding]: ...


CheckFunction: TypeAlias = Callable[["Step", int, "IR"], "Iterable[Finding]"]
"""A plain function used as a step check, named after the function (or its `name` attribute)."""

Check: TypeAlias = "StepCheck | IRCheck | CheckFunction"
"""What `RegisterCheck` accepts."""

CelFunction: TypeAlias = Callable[..., Any]
"""A function callable from CEL: 1 to 3 positional plain Python values in, a plain value out."""


class EventSink(Protocol):
    """Where the relay delivers events. `name` is stable across runs (it keys the delivery marks
    in the outbox). `deliver` returns None or True when the event is delivered, raises or returns
    False when it is not (the relay retries); it may be `async def`."""

    @property
    def name(self) -> str: ...

    def deliver(self, event: Event) -> bool | None | Awaitable[bool | None]: ...


SinkFactory: TypeAlias = Callable[[str], EventSink]
"""Builds a sink from its URL, as written in `IRGOV_EVENT_SINKS` (the scheme included)."""

RegisterCheck: TypeAlias = Callable[["Check"], None]
RegisterCelFunction: TypeAlias = Callable[[str, CelFunction], None]
RegisterRulePack: TypeAlias = Callable[["str | os.PathLike[str]"], None]
RegisterEventSink: TypeAlias = Callable[[str, SinkFactory], None]
RegisterHashBackend: TypeAlias = Callable[["HashBackend"], None]


# -- the hooks ----------------------------------------------------------------------------------

@hookspec
def irgov_register_hash_backends(register: RegisterHashBackend) -> None:
    """Register hash backends: `register(backend)` with an object having `name`, `digest_size`
    (bytes) and `hexdigest(data: bytes) -> str`."""


@hookspec
def irgov_register_checks(register: RegisterCheck) -> None:
    """Register Python checks that contribute rule hits and violations like rules do:
    `register(check)` with a `StepCheck`, an `IRCheck` or a `CheckFunction`."""


@hookspec
def irgov_register_cel_functions(register: RegisterCelFunction) -> None:
    """Register functions callable from CEL expressions: `register(name, function)`."""


@hookspec
def irgov_register_rule_packs(register: RegisterRulePack) -> None:
    """Register rule pack files shipped by a plugin: `register(path)`."""


@hookspec
def irgov_register_event_sinks(register: RegisterEventSink) -> None:
    """Register event sink factories for a URL scheme: `register(scheme, factory)`, where
    `factory(url)` returns an `EventSink`."""


@hookspec
def irgov_on_event(event: Event) -> None:
    """Observe every governance event after it is recorded. Must not raise; errors are logged."""
