"""The `celpy` engine: cel-python, pure Python, always installed.

celpy parses but does not type-check, so names are checked here against the declared
variables, the macro variables and the known functions; an undeclared name is a load error
on both engines, not a runtime surprise on one of them.
"""

from __future__ import annotations

import itertools
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any

import celpy
import celpy.evaluation
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from ..functions import PROJECT_FUNCTIONS, STRING_FUNCTIONS
from . import celpy_semantics
from .base import DECLARED_VARIABLES, CelCompileError, CelEngine, CelEvalError, function_arity

__all__ = ["BUILTIN_FUNCTION_NAMES", "CelPyEngine", "to_python"]

_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_BUILTIN_FUNCTIONS = frozenset({
    "size", "int", "uint", "double", "string", "bytes", "bool", "type", "dyn", "has", "matches",
    "duration", "timestamp", "contains", "startsWith", "endsWith", "getDate", "getDayOfMonth",
    "getDayOfWeek", "getDayOfYear", "getFullYear", "getHours", "getMilliseconds", "getMinutes",
    "getMonth", "getSeconds",
})
# Every function and macro of standard CEL that packs may call (the project's come on top).
BUILTIN_FUNCTION_NAMES = _BUILTIN_FUNCTIONS | _MACROS
# Type names usable as values (`type(x) == int`).
_TYPE_NAMES = frozenset({"int", "uint", "double", "string", "bytes", "bool", "list", "map", "null_type", "type"})


def to_python(value: Any) -> Any:
    """A celpy value as a plain Python value (booleans stay booleans, not integers)."""
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.MapType):
        return {to_python(k): to_python(v) for k, v in value.items()}
    if isinstance(value, celtypes.ListType):
        return [to_python(v) for v in value]
    if value is None or isinstance(value, celtypes.NullType):
        return None
    return value


# The transpiler writes a call as `<function.__module__>.<function.__qualname__>(...)` and runs it
# with `exec`; functions are therefore published as attributes of a namespace that each engine
# puts into its own private copy of the evaluation globals.
_NAMESPACE = "_irgov_cel_functions"
_ENGINE_IDS = itertools.count()


def _adapt(name: str, function: Callable[..., Any], prefix: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            return json_to_cel(function(*(to_python(a) for a in args)))
        except Exception as exc:
            # Raised as a CEL error: the operand it is part of becomes an error value that
            # `||`/`&&` may absorb (celpy_semantics.result), exactly like cel-cpp does with a
            # raising function; a returned error value would flow on into celpy's operators.
            raise CELEvalError(f"{name}: {exc}", type(exc), None) from None

    call.__name__ = name
    call.__module__ = _NAMESPACE
    call.__qualname__ = f"{prefix}_{name}"
    return call


class _Program:
    """A transpiled expression, run in the engine's private globals without celpy's logging
    of every runtime error as an internal error."""

    def __init__(self, runner: Any) -> None:
        self.code = runner.tp.executable_code
        self.base_activation = runner.tp.base_activation


class CelPyEngine(CelEngine):
    name = "celpy"

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        super().__init__(functions)
        for fname, impl in self.extra_functions.items():
            function_arity(fname, impl)
        # The transpiling runner is several times faster than the interpreting one; this one keeps
        # CEL's error semantics where celpy's own departs from them (see celpy_semantics).
        self._env = celpy.Environment(runner_class=celpy_semantics.SpecRunner)
        prefix = f"e{next(_ENGINE_IDS)}"
        table: dict[str, Callable[..., Any]] = {}
        for fname, (impl, _) in PROJECT_FUNCTIONS.items():
            table[fname] = _adapt(fname, impl, prefix)
        for fname, impl in STRING_FUNCTIONS.items():
            table[fname] = _adapt(fname, impl, prefix)
        for fname, impl in self.extra_functions.items():
            table[fname] = _adapt(fname, impl, prefix)
        self._functions = table
        namespace = types.SimpleNamespace(**{f.__qualname__: f for f in table.values()})
        self._globals: dict[str, Any] = dict(celpy.evaluation.result.__globals__)
        self._globals[_NAMESPACE] = namespace
        self._globals[celpy_semantics.GLOBAL_NAME] = celpy_semantics
        # Transpiled code reads its activation from a global: one evaluation at a time.
        self._lock = threading.Lock()
        self._known_functions = _BUILTIN_FUNCTIONS | _MACROS | frozenset(table)

    def _compile(self, source: str) -> Any:
        try:
            tree = self._env.compile(source)
        except CELParseError as exc:
            message = str(exc.args[0]).split("\n", 1)[0] if exc.args else "syntax error"
            offset = _offset(source, exc.line or 1, exc.column or 1)
            # celpy's message is an excerpt of the source with a caret under the problem.
            near = source[offset:offset + 12].strip()
            excerpt = message.strip() and message.strip() in source
            text = (f"syntax error near `{near}`" if near else "syntax error at the end of the expression")
            raise CelCompileError(text if excerpt else message, offset) from None
        except RecursionError:
            raise CelCompileError("expression nested too deeply to parse", 0) from None
        except Exception as exc:  # lark raises its own errors for some inputs
            raise CelCompileError(f"syntax error: {exc}".split("\n", 1)[0], 0) from None
        try:
            self._check_names(tree)
            return _Program(self._env.program(tree, functions=self._functions))
        except CelCompileError:
            raise
        except RecursionError:
            # Only reachable through `compile_unchecked`: `compile` refuses such nesting first.
            raise CelCompileError("expression nested too deeply to compile", 0) from None
        except Exception as exc:
            raise CelCompileError(f"cannot compile: {exc}".split("\n", 1)[0], 0) from None

    def _check_names(self, node: Any, bound: frozenset[str] = frozenset()) -> None:
        """Every identifier is a declared variable, a type name or a macro variable in scope;
        every called function is known."""
        if not isinstance(node, lark.Tree):
            return
        if node.data == "ident":
            token = node.children[0]
            name = str(token)
            if name not in DECLARED_VARIABLES and name not in bound and name not in _TYPE_NAMES:
                raise CelCompileError(f"undeclared reference to `{name}`", _start(token))
            return
        if node.data == "ident_arg":
            token = node.children[0]
            if str(token) not in self._known_functions:
                raise CelCompileError(f"undeclared reference to function `{token}`", _start(token))
            if str(token) == "has" and not (len(node.children) == 2
                                            and celpy_semantics.has_field_selection(node.children[1])):
                raise CelCompileError("invalid argument to has() macro: expected a field selection `e.f`",
                                      _start(token))
        if node.data == "member_dot_arg" and len(node.children) >= 2:
            target, method = node.children[0], node.children[1]
            if isinstance(method, lark.Token) and str(method) not in self._known_functions:
                raise CelCompileError(f"undeclared reference to function `{method}`", _start(method))
            args = node.children[2] if len(node.children) > 2 else None
            if str(method) in _MACROS and isinstance(args, lark.Tree) and args.children:
                variable = _bare_ident(args.children[0])
                if variable is not None:
                    self._check_names(target, bound)
                    for child in args.children[1:]:
                        self._check_names(child, bound | {variable})
                    return
        for child in node.children:
            self._check_names(child, bound)

    def activation(self, variables: Mapping[str, Any]) -> Any:
        return {name: json_to_cel(value) for name, value in variables.items()}

    def evaluate(self, program: Any, activation: Any) -> Any:
        try:
            with self._lock:
                context = program.base_activation.clone()
                context.identifiers.load_values(activation)
                self._globals["base_activation"] = context
                exec(program.code, self._globals)
                value = self._globals["CEL"]
        except CELEvalError as exc:
            raise CelEvalError(_eval_message(exc)) from None
        except Exception as exc:  # celpy raises plain Python errors for some type mismatches
            raise CelEvalError(f"{type(exc).__name__}: {exc}") from None
        if isinstance(value, CELEvalError):
            raise CelEvalError(_eval_message(value))
        if isinstance(value, celtypes.ListType):
            for item in value:
                if isinstance(item, CELEvalError):
                    raise CelEvalError(_eval_message(item))
        return to_python(value)


def _eval_message(exc: CELEvalError) -> str:
    if not exc.args:
        return "evaluation error"
    message = str(exc.args[0])
    if len(exc.args) > 2 and exc.args[2]:
        message += ": " + ", ".join(str(a) for a in exc.args[2])
    return message


def _start(token: Any) -> int:
    start = getattr(token, "start_pos", None)
    return start if isinstance(start, int) else 0


def _bare_ident(node: Any) -> str | None:
    """The name when `node` is an expression made of a single identifier."""
    while isinstance(node, lark.Tree):
        if node.data == "ident":
            return str(node.children[0])
        if len(node.children) != 1:
            return None
        node = node.children[0]
    return None


def _offset(source: str, line: int, column: int) -> int:
    lines = source.split("\n")
    return min(len(source), sum(len(text) + 1 for text in lines[: line - 1]) + column - 1)
