"""What plugins registered: each `irgov_register_*` hook is called once per plugin with a
`register` callback that checks what it is given and remembers which plugin gave it.

A name is owned by one plugin: a second plugin registering the same check, CEL function, rule
pack, sink scheme or hash backend is refused, and so is a value that cannot work (a pack file that
does not exist, a function that is not callable). Every refusal is one line naming the plugin.
`IRGOV_TRACE_PLUGINS=1` logs each hook call (plugin, hook, duration) and each registration on the
`irgov_policy.plugins.trace` logger at INFO level.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HashBackendError, PluginError
from .hashing import HashRegistry

if TYPE_CHECKING:
    from .plugins import IrgovPluginManager

__all__ = ["KINDS", "Kind", "Registration", "collect_registrations", "first_line", "trace", "trace_enabled"]

trace = logging.getLogger("irgov_policy.plugins.trace")

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


def trace_enabled() -> bool:
    """`IRGOV_TRACE_PLUGINS` set to anything but empty or `0`."""
    return os.environ.get("IRGOV_TRACE_PLUGINS", "").strip() not in ("", "0")


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message`, for one-line errors about a plugin's exception."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass(frozen=True)
class Registration:
    """One object a plugin registered: `kind` is a `Kind.label`, `name` what it is known by."""

    plugin: str
    kind: str
    name: str
    value: Any


class _Refused(Exception):
    """A registered value that cannot work; the message says why."""


def _describe_check(check: Any) -> tuple[str, Any]:
    if not (callable(getattr(check, "check_step", None)) or callable(getattr(check, "check_ir", None))
            or callable(check)):
        raise _Refused(f"check `{check!r}` is neither callable nor has `check_step` or `check_ir`")
    # The same name `policy.checks.as_check` reports findings under (pack `plugin:NAME`).
    name = getattr(check, "name", None) or getattr(check, "__name__", None) or type(check).__name__
    return str(name), check


def _describe_cel_function(name: Any, function: Any) -> tuple[str, Any]:
    if not isinstance(name, str) or not name.isidentifier():
        raise _Refused(f"cel function name `{name}` is not an identifier")
    if not callable(function):
        raise _Refused(f"cel function `{name}` is not callable")
    return name, function


def _describe_rule_pack(path: Any) -> tuple[str, Any]:
    if not isinstance(path, str | os.PathLike):
        raise _Refused(f"rule pack `{path!r}` is not a path")
    file = Path(path)
    if not file.is_file():
        raise _Refused(f"rule pack `{file}` does not exist (is it in the distribution's package data?)")
    return file.name, file.resolve()


def _describe_event_sink(scheme: Any, factory: Any) -> tuple[str, Any]:
    key = scheme.lower().rstrip(":") if isinstance(scheme, str) else scheme
    if not isinstance(key, str) or not _SCHEME.fullmatch(key):
        raise _Refused(f"event sink scheme `{scheme}` is not a url scheme")
    if not callable(factory):
        raise _Refused(f"event sink factory for `{key}` is not callable")
    return key, factory


def _describe_hash_backend(backend: Any) -> tuple[str, Any]:
    try:
        HashRegistry().register(backend)
    except HashBackendError as exc:
        raise _Refused(str(exc)) from exc
    return str(backend.name), backend


@dataclass(frozen=True)
class Kind:
    """One kind of registration: its hook, its singular label, its plural key (JSON), the call."""

    hook: str
    label: str
    key: str
    usage: str
    describe: Callable[..., tuple[str, Any]]


KINDS: dict[str, Kind] = {kind.hook: kind for kind in (
    Kind("irgov_register_checks", "check", "checks", "register(check)", _describe_check),
    Kind("irgov_register_cel_functions", "cel function", "cel_functions", "register(name, function)",
         _describe_cel_function),
    Kind("irgov_register_rule_packs", "rule pack", "rule_packs", "register(path)", _describe_rule_pack),
    Kind("irgov_register_event_sinks", "event sink", "event_sinks", "register(scheme, factory)",
         _describe_event_sink),
    Kind("irgov_register_hash_backends", "hash backend", "hash_backends", "register(backend)",
         _describe_hash_backend),
)}


def _registrar(kind: Kind, plugin: str, owners: dict[tuple[str, str], str],
               found: list[Registration]) -> Callable[..., None]:
    """The `register` callback handed to one plugin's implementation of `kind.hook`."""
    signature = inspect.signature(kind.describe)

    def register(*args: Any, **kwargs: Any) -> None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise PluginError(f"plugin `{plugin}` calls `{kind.usage}` of `{kind.hook}` wrongly: {exc}") from None
        try:
            name, value = kind.describe(*args, **kwargs)
        except _Refused as exc:
            raise PluginError(f"plugin `{plugin}`: {exc}") from None
        # Two plugins may ship files of the same name: a pack is the file it names.
        key = (kind.label, str(value) if kind.label == "rule pack" else name)
        owner = owners.get(key)
        if owner == plugin:
            raise PluginError(f"plugin `{plugin}` registers {kind.label} `{name}` twice")
        if owner is not None:
            raise PluginError(f"plugin `{plugin}` registers {kind.label} `{name}`, already registered by "
                              f"plugin `{owner}`")
        owners[key] = plugin
        found.append(Registration(plugin, kind.label, name, value))
        if trace_enabled():
            trace.info("plugin %s: registered %s `%s`", plugin, kind.label, name)

    return register


def collect_registrations(manager: IrgovPluginManager) -> tuple[Registration, ...]:
    """Call every `irgov_register_*` implementation once, in registration order (built-ins
    first); raise `PluginError` at the first plugin that fails or conflicts."""
    found: list[Registration] = []
    owners: dict[tuple[str, str], str] = {}
    for kind in KINDS.values():
        for impl in getattr(manager.hook, kind.hook).get_hookimpls():
            register = _registrar(kind, impl.plugin_name, owners, found)
            try:
                manager.call_impl(impl, kind.hook, {"register": register})
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(f"plugin `{impl.plugin_name}` failed in `{kind.hook}`: {first_line(exc)}") from exc
    return tuple(found)
