"""What plugins contribute to policy: CEL functions, Python checks and rule pack files.

The plugin manager has already called the hooks and refused conflicts between plugins
(`irgov_policy.plugin_registry`); what is left here is what only policy knows: a plugin's CEL
function must not take the name of one of the project's own functions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import PluginError
from ..plugins import IrgovPluginManager, get_plugin_manager
from .checks import PythonCheck, as_check
from .functions import PROJECT_FUNCTIONS, STRING_FUNCTIONS

__all__ = ["collect_cel_functions", "collect_checks", "collect_rule_pack_paths"]

_RESERVED = frozenset(PROJECT_FUNCTIONS) | frozenset(STRING_FUNCTIONS)


def collect_cel_functions(manager: IrgovPluginManager | None = None) -> dict[str, Callable[..., Any]]:
    """`irgov_register_cel_functions(register)`: `register(name, function)`, by name; a name of
    one of the project's own functions is refused."""
    functions: dict[str, Callable[..., Any]] = {}
    for registration in (manager or get_plugin_manager()).registrations("cel function"):
        if registration.name in _RESERVED:
            raise PluginError(f"plugin `{registration.plugin}` registers cel function `{registration.name}`, "
                              "a function of irgov_policy itself")
        functions[registration.name] = registration.value
    return functions


def collect_checks(manager: IrgovPluginManager | None = None) -> list[PythonCheck]:
    """`irgov_register_checks(register)`: `register(check)`, see `irgov_policy.policy.checks`."""
    return [as_check(r.value) for r in (manager or get_plugin_manager()).registrations("check")]


def collect_rule_pack_paths(manager: IrgovPluginManager | None = None) -> list[Path]:
    """`irgov_register_rule_packs(register)`: `register(path)` of a `*.irgov.yaml` file."""
    return sorted(r.value for r in (manager or get_plugin_manager()).registrations("rule pack"))
