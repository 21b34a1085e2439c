"""The plugin manager: built-in plugins, entry-point plugins, allow-list and block-list.

Entry points of group `irgov_policy` are loaded unless blocked. `IRGOV_PLUGINS` (comma-separated
names) is an allow-list: when set, only those entry-point plugins load. `IRGOV_PLUGINS_BLOCK`
blocks the names it lists. Built-in plugins always load: they provide the defaults.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError
from .hashing import HashRegistry

__all__ = [
    "DEFAULT_PLUGINS",
    "PluginInfo",
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

_MANAGER: pluggy.PluginManager | None = None
# Entry-point plugin name -> version of the distribution that ships it. Plugins are registered
# one by one (for the allow- and block-lists), so pluggy's own distribution records stay empty.
_VERSIONS: dict[str, str] = {}


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None or not value.strip():
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _build_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        manager.register(module, name=module_name)
    allowed = _names_from_env("IRGOV_PLUGINS")
    blocked = _names_from_env("IRGOV_PLUGINS_BLOCK") or set()
    for entry_point in importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME):
        if entry_point.name in blocked or (allowed is not None and entry_point.name not in allowed):
            logger.info("plugin %s not loaded: blocked by configuration", entry_point.name)
            manager.set_blocked(entry_point.name)
            continue
        if manager.get_plugin(entry_point.name) is not None or manager.is_blocked(entry_point.name):
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:
            raise PluginError(f"plugin `{entry_point.name}` failed to load: {exc}") from exc
        manager.register(plugin, name=entry_point.name)
        if entry_point.dist is not None:
            _VERSIONS[entry_point.name] = entry_point.dist.version
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin `{exc.plugin}` implements an unknown hook: {exc}") from exc
    return manager


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = _build_manager()
    return _MANAGER


def reset_plugin_manager() -> None:
    """Forget the plugin manager (and caches built from it) so the next use rebuilds it."""
    global _MANAGER
    _MANAGER = None
    from . import hashing

    hashing._DEFAULT_REGISTRY = None


def collect_hash_backends(manager: pluggy.PluginManager | None = None) -> HashRegistry:
    registry = HashRegistry()
    (manager or get_plugin_manager()).hook.irgov_register_hash_backends(register=registry.register)
    return registry


@dataclass(frozen=True)
class PluginInfo:
    name: str
    hooks: tuple[str, ...]
    version: str | None
    builtin: bool


def list_plugins(manager: pluggy.PluginManager | None = None) -> list[PluginInfo]:
    """Every registered plugin with the hooks it implements, built-ins first."""
    manager = manager or get_plugin_manager()
    dists = {plugin: dist for plugin, dist in manager.list_plugin_distinfo()}
    infos: list[PluginInfo] = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(h.name for h in manager.get_hookcallers(plugin) or []))
        dist: Any = dists.get(plugin)
        version = dist.version if dist is not None else _VERSIONS.get(name)
        infos.append(PluginInfo(name=name, hooks=hooks, version=version, builtin=name in DEFAULT_PLUGINS))
    infos.sort(key=lambda i: (not i.builtin, i.name))
    return infos
