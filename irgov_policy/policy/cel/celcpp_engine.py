"""The `cel-cpp` engine: cel-expr-python, the C++ CEL runtime (extra `fast`).

cel-cpp type-checks at compile time, so undeclared variables and functions are reported at load.
It dispatches Python functions only on concrete types (a `dyn` parameter never matches at
runtime), so every function is declared with one overload per combination of argument types.

Its Python binding cuts strings at the first NUL character when it converts them (`"a\\x00b"`
arrives as `"a"`), which would let a NUL hide the rest of a value from a rule. Activations holding
a NUL anywhere are therefore evaluated by the celpy engine, which keeps strings whole: the same
programs, the same functions, the same results, only slower for such rare inputs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_strings

from ..functions import PROJECT_FUNCTIONS
from .base import DECLARED_VARIABLES, CelCompileError, CelEngine, CelEvalError, function_arity

if TYPE_CHECKING:
    from .celpy_engine import CelPyEngine

__all__ = ["CelCppEngine"]

_T = cel.Type
_ARG_TYPES: dict[str, Any] = {
    "string": _T.STRING, "int": _T.INT, "uint": _T.UINT, "double": _T.DOUBLE, "bool": _T.BOOL,
    "null": _T.NULL, "bytes": _T.BYTES, "list": _T.List(_T.DYN), "map": _T.Map(_T.DYN, _T.DYN),
}
_LOCATION = re.compile(r"<input>:(\d+):(\d+): (.*)")
# The binding wraps messages in their status: `INVALID_ARGUMENT: ... [INVALID_ARGUMENT]`.
_STATUS = re.compile(r"^[A-Z_]+: |\s*\[[A-Z_]+\]\s*$", re.MULTILINE)
_UNLOCATED = re.compile(r"^ERROR: <input>:-?\d+:-?\d+: ")


def _overloads(name: str, impl: Callable[..., Any], arity: int) -> Any:
    overloads = [
        cel.Overload(f"irgov_{name}_{'_'.join(combo)}", _T.DYN, [_ARG_TYPES[t] for t in combo], impl=impl)
        for combo in itertools.product(_ARG_TYPES, repeat=arity)
    ]
    return cel.FunctionDecl(name, overloads)


def _has_nul(value: Any) -> bool:
    """True when a string (or a map key) anywhere in `value` contains a NUL character.

    Runs for every activation: exact type checks first (JSON gives dicts, lists and strs), the
    slower abstract checks only for other containers."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            if "\x00" in item:
                return True
        elif kind is dict:
            for key, inner in item.items():
                if type(key) is str and "\x00" in key:
                    return True
                inner_kind = type(inner)
                if inner_kind is str:
                    if "\x00" in inner:
                        return True
                elif inner_kind not in _SCALARS:
                    stack.append(inner)
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                if isinstance(key, str) and "\x00" in key:
                    return True
                stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


_SCALARS = frozenset({int, float, bool, type(None)})


class _Program:
    """A compiled expression and its source (compiled for celpy only when a NUL needs it)."""

    __slots__ = ("expression", "fallback", "source")

    def __init__(self, expression: Any, source: str) -> None:
        self.expression = expression
        self.source = source
        self.fallback: Any = None


class _FallbackActivation:
    __slots__ = ("inner",)

    def __init__(self, inner: Any) -> None:
        self.inner = inner


_UNDECLARED = re.compile(r"undeclared reference to `([A-Za-z_][A-Za-z0-9_.]*)`")


def _reference_start(source: str, message: str, offset: int) -> int:
    """cel-cpp places an undeclared `a.b` or `f(...)` at its last `.` or at `(`; point at the
    name's first character instead, where an author looks for it."""
    match = _UNDECLARED.match(message)
    if match is None:
        return offset
    start = source.rfind(match.group(1).split(".")[0], 0, offset + 1)
    return start if start != -1 else offset


def _offset(source: str, line: int, column: int) -> int:
    lines = source.split("\n")
    return sum(len(text) + 1 for text in lines[: line - 1]) + column - 1


class CelCppEngine(CelEngine):
    name = "cel-cpp"

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        super().__init__(functions)
        decls = [_overloads(name, impl, arity) for name, (impl, arity) in PROJECT_FUNCTIONS.items()]
        decls += [_overloads(name, impl, function_arity(name, impl)) for name, impl in self.extra_functions.items()]
        self._env = cel.NewEnv(
            variables={name: _T.DYN for name in DECLARED_VARIABLES},
            extensions=[ext_strings.ExtStrings()],
            functions=decls,
        )
        self._error_type = _T.ERROR
        self._fallback: CelPyEngine | None = None

    def _celpy(self) -> CelPyEngine:
        if self._fallback is None:
            from .celpy_engine import CelPyEngine  # only a string with a NUL needs it: loaded then

            self._fallback = CelPyEngine(self.extra_functions)
        return self._fallback

    def _compile(self, source: str) -> Any:
        try:
            return _Program(self._env.compile(source), source)
        except RuntimeError as exc:
            text = _STATUS.sub("", str(exc))
            match = _LOCATION.search(text)
            if match is None:
                message = _UNLOCATED.sub("", text.split("\n", 1)[0]).strip().rstrip(".")
                raise CelCompileError((message[:1].lower() + message[1:]).replace("'", "`"), 0) from None
            line, column, message = int(match.group(1)), int(match.group(2)), match.group(3)
            message = message.split(" | ", 1)[0].replace(" (in container '')", "").strip().rstrip(".")
            message = message[0].lower() + message[1:] if message else "invalid expression"
            message = message.replace("'", "`")
            raise CelCompileError(message, _reference_start(source, message, _offset(source, line, column))) from None

    def activation(self, variables: Mapping[str, Any]) -> Any:
        if _has_nul(variables):
            return _FallbackActivation(self._celpy().activation(variables))
        return self._env.Activation(variables)

    def evaluate(self, program: Any, activation: Any) -> Any:
        if isinstance(activation, _FallbackActivation):
            if program.fallback is None:
                program.fallback = self._celpy().compile_unchecked(program.source)
            return self._celpy().evaluate(program.fallback, activation.inner)
        value = program.expression.eval(activation)
        if value.type() == self._error_type:
            raise CelEvalError(str(value.value()))
        return value.plain_value()
