"""The CEL engine interface and engine selection.

An engine compiles an expression once (`compile`), builds one activation per step from plain
Python values (`activation`) and evaluates compiled programs against it (`evaluate`), always
returning plain Python values. Both engines see the same variables and the same functions, so a
pack means the same thing whichever engine runs it; a conformance test holds them to that.
"""

from __future__ import annotations

import importlib.util
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from ...errors import PolicyError
from ..cel_text import nesting_depth

__all__ = [
    "DECLARED_VARIABLES",
    "MAX_EXPRESSION_LENGTH",
    "MAX_EXPRESSION_NESTING",
    "CelCompileError",
    "CelEngine",
    "CelEvalError",
    "available_engines",
    "check_limits",
    "create_engine",
    "function_arity",
]

# `step`: the step under evaluation; `ir`: the whole IR; `constants`: the packs' named lists.
DECLARED_VARIABLES = ("step", "ir", "constants")
MAX_EXPRESSION_LENGTH = 4096
MAX_EXPRESSION_NESTING = 24
MAX_FUNCTION_ARITY = 3


class CelCompileError(PolicyError):
    """An expression that does not compile; `offset` is the 0-based character offset in it."""

    def __init__(self, message: str, offset: int = 0) -> None:
        self.message = message
        self.offset = offset
        super().__init__(message)


class CelEvalError(PolicyError):
    """An expression that produced an error (or raised) at runtime."""


def check_limits(source: str) -> None:
    """Refuse expressions too long or too deeply nested before any parser sees them (parsers
    recurse on nesting: past their own limits they fail inconsistently, or overflow the stack)."""
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise CelCompileError(
            f"expression of {len(source)} characters exceeds the limit of {MAX_EXPRESSION_LENGTH}", 0)
    offset = nesting_depth(source, MAX_EXPRESSION_NESTING)
    if offset is not None:
        raise CelCompileError(f"expression nested deeper than {MAX_EXPRESSION_NESTING} levels", offset)


def function_arity(name: str, function: Callable[..., Any]) -> int:
    """The number of positional parameters of a registered CEL function."""
    if not callable(function):
        raise PolicyError(f"cel function `{name}` is not callable")
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        raise PolicyError(f"cel function `{name}` has no inspectable signature") from None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        raise PolicyError(f"cel function `{name}` must take a fixed number of arguments")
    if not 1 <= len(positional) <= MAX_FUNCTION_ARITY:
        raise PolicyError(f"cel function `{name}` must take 1 to {MAX_FUNCTION_ARITY} arguments")
    return len(positional)


class CelEngine(ABC):
    """A CEL implementation. Subclasses are built with the extra (plugin) functions to expose."""

    name: str

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self.extra_functions: dict[str, Callable[..., Any]] = dict(functions or {})

    def compile(self, source: str) -> Any:
        """Parse and check `source` within the limits; raise `CelCompileError` with the offset
        of the problem."""
        check_limits(source)
        return self._compile(source)

    def compile_unchecked(self, source: str) -> Any:
        """Compile an expression the engine itself built (no length or nesting limit)."""
        return self._compile(source)

    @abstractmethod
    def _compile(self, source: str) -> Any:
        """Parse and type-check `source`."""

    @abstractmethod
    def activation(self, variables: Mapping[str, Any]) -> Any:
        """Build one activation from plain Python values, reused for every program of a step."""

    @abstractmethod
    def evaluate(self, program: Any, activation: Any) -> Any:
        """Evaluate a compiled program; return a plain Python value or raise `CelEvalError`."""


def _cel_cpp_importable() -> bool:
    return importlib.util.find_spec("cel_expr_python") is not None


def available_engines() -> list[str]:
    """Names of the engines that can run here, the preferred one first."""
    return (["cel-cpp"] if _cel_cpp_importable() else []) + ["celpy"]


def create_engine(name: str = "auto", functions: Mapping[str, Callable[..., Any]] | None = None) -> CelEngine:
    """`auto` (cel-cpp when importable, else celpy), `celpy` or `cel-cpp`."""
    if name == "auto":
        name = available_engines()[0]
    if name == "cel-cpp":
        if not _cel_cpp_importable():
            raise PolicyError("engine `cel-cpp` needs the `cel-expr-python` package (extra `fast`)")
        from .celcpp_engine import CelCppEngine

        return CelCppEngine(functions)
    if name == "celpy":
        from .celpy_engine import CelPyEngine

        return CelPyEngine(functions)
    raise PolicyError(f"unknown cel engine `{name}`: use `auto`, `celpy` or `cel-cpp`")
