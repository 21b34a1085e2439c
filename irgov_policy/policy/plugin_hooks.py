"""What plugins contribute to policy: CEL functions, Python checks and rule pack files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy

from ..errors import PolicyError
from ..plugins import get_plugin_manager
from .checks import PythonCheck, as_check
from .functions import PROJECT_FUNCTIONS, STRING_FUNCTIONS

__all__ = ["collect_cel_functions", "collect_checks", "collect_rule_pack_paths"]

_RESERVED = frozenset(PROJECT_FUNCTIONS) | frozenset(STRING_FUNCTIONS)


def collect_cel_functions(manager: pluggy.PluginManager | None = None) -> dict[str, Callable[..., Any]]:
    """`irgov_register_cel_functions(register)`: `register(name, function)`; a name registered
    twice, or one of the project's own functions, is refused."""
    functions: dict[str, Callable[..., Any]] = {}

    def register(name: str, function: Callable[..., Any]) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise PolicyError(f"cel function name `{name}` is not an identifier")
        if name in _RESERVED or name in functions:
            raise PolicyError(f"cel function `{name}` is registered twice")
        if not callable(function):
            raise PolicyError(f"cel function `{name}` is not callable")
        functions[name] = function

    (manager or get_plugin_manager()).hook.irgov_register_cel_functions(register=register)
    return functions


def collect_checks(manager: pluggy.PluginManager | None = None) -> list[PythonCheck]:
    """`irgov_register_checks(register)`: `register(check)`, see `irgov_policy.policy.checks`."""
    checks: list[PythonCheck] = []
    (manager or get_plugin_manager()).hook.irgov_register_checks(register=lambda c: checks.append(as_check(c)))
    return checks


def collect_rule_pack_paths(manager: pluggy.PluginManager | None = None) -> list[Path]:
    """`irgov_register_rule_packs(register)`: `register(path)` of a `*.irgov.yaml` file."""
    paths: list[Path] = []
    (manager or get_plugin_manager()).hook.irgov_register_rule_packs(register=lambda p: paths.append(Path(p)))
    return sorted(paths)
