"""Every hook a plugin can implement. Hooks are prefixed `irgov_`; arguments are only ever added.

Hooks that contribute objects receive a `register` callback rather than returning values, so a
plugin can contribute any number of objects and the caller controls validation and conflicts.
Each hook is documented in `docs/plugins.md`; a test fails when one is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "irgov_policy"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def irgov_register_hash_backends(register: Callable[[Any], None]) -> None:
    """Register hash backends: `register(backend)` with an object having `name`, `digest_size`
    (bytes) and `hexdigest(data: bytes) -> str`."""


@hookspec
def irgov_register_checks(register: Callable[..., None]) -> None:
    """Register Python checks that contribute rule hits and violations like rules do:
    `register(check)` (see `irgov_policy.policy` for the check interface)."""


@hookspec
def irgov_register_cel_functions(register: Callable[..., None]) -> None:
    """Register functions callable from CEL expressions: `register(name, function)`."""


@hookspec
def irgov_register_rule_packs(register: Callable[..., None]) -> None:
    """Register rule pack files shipped by a plugin: `register(path)`."""


@hookspec
def irgov_register_event_sinks(register: Callable[..., None]) -> None:
    """Register event sink factories for a URL scheme: `register(scheme, factory)`, where
    `factory(url)` returns a sink."""


@hookspec
def irgov_on_event(event: Any) -> None:
    """Observe every governance event after it is recorded. Must not raise; errors are logged."""
