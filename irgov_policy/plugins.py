"""The plugin manager: built-in plugins, entry-point plugins, allow-list and block-list.

Entry points of group `irgov_policy` are loaded unless blocked. `IRGOV_PLUGINS` (comma-separated
names) is an allow-list: when set, only those entry-point plugins load. `IRGOV_PLUGINS_BLOCK`
blocks the names it lists. Built-in plugins always load: they provide the defaults.

Building the manager also calls every `irgov_register_*` hook once (`plugin_registry`), so a
broken plugin (a misspelt hook, a wrong signature, a raise, a name another plugin registered)
fails the same way, with one line naming it, whichever command or host loads plugins first.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from ._version import __version__
from .errors import PluginError
from .hashing import HashRegistry
from .plugin_registry import KINDS, Registration, collect_registrations, first_line, trace, trace_enabled

__all__ = [
    "DEFAULT_PLUGINS",
    "HOOK_NAMES",
    "IrgovPluginManager",
    "PluginInfo",
    "PluginOrigin",
    "collect_hash_backends",
    "get_plugin_manager",
    "list_plugins",
    "reset_plugin_manager",
]

logger = logging.getLogger(__name__)

DEFAULT_PLUGINS = (
    "irgov_policy.default_plugins.hash_backends",
    "irgov_policy.default_plugins.sinks",
)

HOOK_NAMES: tuple[str, ...] = tuple(sorted(n for n in dir(hookspecs) if n.startswith("irgov_")))
_SPEC_ARGUMENTS: dict[str, tuple[str, ...]] = {
    name: tuple(inspect.signature(getattr(hookspecs, name)).parameters) for name in HOOK_NAMES}


@dataclass(frozen=True)
class PluginOrigin:
    """Where a plugin comes from: its distribution, version and module (`module:attr` for an
    entry point)."""

    distribution: str | None
    version: str | None
    module: str | None


def _required_arguments(function: Any) -> tuple[str, ...]:
    """The arguments pluggy will pass: those without a default (as `HookImpl.argnames`)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return ()
    return tuple(p.name for p in parameters
                 if p.default is inspect.Parameter.empty
                 and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def unknown_hook_message(plugin: str, hook: str) -> str:
    """`plugin `x` implements unknown hook `y``, with the nearest hook name as help."""
    near = difflib.get_close_matches(hook, HOOK_NAMES, n=1, cutoff=0.6)
    if near:
        return f"plugin `{plugin}` implements unknown hook `{hook}`: did you mean `{near[0]}`?"
    known = ", ".join(f"`{h}`" for h in HOOK_NAMES)
    return f"plugin `{plugin}` implements unknown hook `{hook}`: hooks are {known}"


class IrgovPluginManager(pluggy.PluginManager):
    """A pluggy manager of the `irgov_policy` hooks that refuses a broken plugin with one line
    naming it, records where each plugin comes from, and keeps what the plugins registered."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self.origins: dict[str, PluginOrigin] = {}
        self._registrations: tuple[Registration, ...] | None = None

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """Register `plugin` after checking each `irgov_*` attribute against the specifications:
        an unknown or misspelt hook, a hook without `@hookimpl`, arguments the hook does not pass."""
        label = name or self.get_canonical_name(plugin)
        self._check_hooks(plugin, label)
        same = next((n for n, p in self.list_name_plugin() if p is plugin), None)
        if same is not None:
            raise PluginError(f"plugin `{label}` is the same object as plugin `{same}`: declare one entry point")
        try:
            registered = super().register(plugin, name=label)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin `{label}`: {str(exc).splitlines()[0].lower()}") from exc
        self._registrations = None
        return registered

    def unregister(self, plugin: Any | None = None, name: str | None = None) -> Any | None:
        self._registrations = None
        return super().unregister(plugin, name)

    def _check_hooks(self, plugin: Any, label: str) -> None:
        for attribute in dir(plugin):
            if not attribute.startswith("irgov_"):
                continue
            options = self.parse_hookimpl_opts(plugin, attribute)
            if options is None:
                if attribute in _SPEC_ARGUMENTS and callable(getattr(plugin, attribute, None)):
                    raise PluginError(f"plugin `{label}` defines `{attribute}` without `@hookimpl`, "
                                      "so it is never called")
                continue
            hook = options.get("specname") or attribute
            if hook not in _SPEC_ARGUMENTS:
                raise PluginError(unknown_hook_message(label, hook))
            if options.get("hookwrapper") or options.get("wrapper"):
                raise PluginError(f"plugin `{label}` implements `{hook}` as a wrapper, which irgov_policy "
                                  "does not call")
            taken = _required_arguments(getattr(plugin, attribute))
            expected = _SPEC_ARGUMENTS[hook]
            if not set(taken) <= set(expected):
                raise PluginError(f"plugin `{label}` implements `{hook}({', '.join(taken)})`, but the hook "
                                  f"passes `{hook}({', '.join(expected)})`")

    def call_impl(self, impl: pluggy.HookImpl, hook: str, arguments: Mapping[str, Any]) -> Any:
        """Call one implementation, logging its plugin and duration when `IRGOV_TRACE_PLUGINS` is set."""
        started = time.perf_counter()
        try:
            return impl.function(*[arguments[name] for name in impl.argnames])
        finally:
            if trace_enabled():
                trace.info("plugin %s: %s took %.3f ms", impl.plugin_name, hook,
                           (time.perf_counter() - started) * 1000)

    def registrations(self, kind: str | None = None) -> tuple[Registration, ...]:
        """What every plugin registered (of one kind: `check`, `cel function`, `rule pack`,
        `event sink`, `hash backend`), in registration order; computed and checked once."""
        if self._registrations is None:
            self._registrations = collect_registrations(self)
        if kind is None:
            return self._registrations
        if kind not in {k.label for k in KINDS.values()}:
            raise ValueError(f"unknown registration kind `{kind}`")
        return tuple(r for r in self._registrations if r.kind == kind)


_MANAGER: IrgovPluginManager | None = None
_FAILURE: str | None = None


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None or not value.strip():
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _load_entry_points(manager: IrgovPluginManager) -> None:
    allowed = _names_from_env("IRGOV_PLUGINS")
    blocked = _names_from_env("IRGOV_PLUGINS_BLOCK") or set()
    # By name: which of two conflicting plugins is reported must not depend on directory order.
    for entry_point in sorted(importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME), key=lambda e: e.name):
        name = entry_point.name
        if name in blocked or (allowed is not None and name not in allowed):
            logger.info("plugin %s not loaded: blocked by configuration", name)
            manager.set_blocked(name)
            continue
        if manager.is_blocked(name):
            continue
        dist = entry_point.dist.name if entry_point.dist is not None else None
        if manager.get_plugin(name) is not None:
            other = manager.origins[name].distribution if name in manager.origins else None
            if other == dist:
                continue  # the same distribution seen twice on the path
            raise PluginError(f"plugin `{name}` is declared by two distributions, `{other}` and `{dist}`")
        started = time.perf_counter()
        try:
            plugin = entry_point.load()
        except Exception as exc:
            raise PluginError(f"plugin `{name}` failed to load: {first_line(exc)}") from exc
        manager.register(plugin, name=name)
        manager.origins[name] = PluginOrigin(dist, entry_point.dist.version if entry_point.dist else None,
                                             entry_point.value)
        if trace_enabled():
            trace.info("plugin %s: loaded `%s` in %.3f ms", name, entry_point.value,
                       (time.perf_counter() - started) * 1000)


def _build_manager() -> IrgovPluginManager:
    manager = IrgovPluginManager()
    for module_name in DEFAULT_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
        manager.origins[module_name] = PluginOrigin("irgov-policy", __version__, module_name)
    _load_entry_points(manager)
    try:
        manager.check_pending()  # each `irgov_` attribute was checked on registration: a backstop
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin `{manager.get_name(exc.plugin)}`: {str(exc).splitlines()[0]}") from exc
    manager.registrations()
    return manager


def get_plugin_manager() -> IrgovPluginManager:
    """The process-wide plugin manager, built on first use. A broken plugin raises `PluginError`
    here, every time, until it is fixed or blocked (`IRGOV_PLUGINS_BLOCK`)."""
    global _MANAGER, _FAILURE
    if _MANAGER is None:
        if _FAILURE is not None:
            raise PluginError(_FAILURE)
        try:
            _MANAGER = _build_manager()
        except PluginError as exc:
            _FAILURE = str(exc)
            raise
    return _MANAGER


def reset_plugin_manager() -> None:
    """Forget the plugin manager (and caches built from it) so the next use rebuilds it."""
    global _MANAGER, _FAILURE
    _MANAGER = None
    _FAILURE = None
    from . import hashing

    hashing._DEFAULT_REGISTRY = None


def collect_hash_backends(manager: IrgovPluginManager | None = None) -> HashRegistry:
    registry = HashRegistry()
    for registration in (manager or get_plugin_manager()).registrations("hash backend"):
        registry.register(registration.value)
    return registry


@dataclass(frozen=True)
class PluginInfo:
    """One plugin as `irgov plugins` shows it. `registered` maps a kind's key (`checks`,
    `cel_functions`, `rule_packs`, `event_sinks`, `hash_backends`) to the names registered."""

    name: str
    hooks: tuple[str, ...]
    version: str | None
    builtin: bool
    distribution: str | None = None
    module: str | None = None
    registered: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "distribution": self.distribution, "version": self.version,
                "builtin": self.builtin, "module": self.module, "hooks": list(self.hooks),
                "registered": {key: list(names) for key, names in self.registered.items()}}


def list_plugins(manager: IrgovPluginManager | None = None) -> list[PluginInfo]:
    """Every registered plugin with its origin, the hooks it implements and what it registered,
    built-ins first."""
    manager = manager or get_plugin_manager()
    registrations = manager.registrations()
    infos: list[PluginInfo] = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(h.name for h in manager.get_hookcallers(plugin) or []))
        registered = {kind.key: tuple(r.name for r in registrations if r.plugin == name and r.kind == kind.label)
                      for kind in KINDS.values()}
        origin = manager.origins.get(name, PluginOrigin(None, None, None))
        infos.append(PluginInfo(name=name, hooks=hooks, version=origin.version, builtin=name in DEFAULT_PLUGINS,
                                distribution=origin.distribution, module=origin.module, registered=registered))
    infos.sort(key=lambda i: (not i.builtin, i.name))
    return infos
