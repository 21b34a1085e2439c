"""CEL's error semantics for celpy's transpiled programs, where celpy departs from the spec.

The CEL specification makes `&&`, `||` and the `all`/`exists` macros commutative in the presence
of errors: `false && error` and `error && false` are `false`, `true || error` is `true`; an error
surfaces only when no operand decides the result. `has(e.f)` is `true` or `false` for a map `e`
and an error when `e` is an error or not a map. cel-python 0.5 departs from this in ways that
change decisions: its `has()` yields a Python `bool` that `&&`/`||`/`!` refuse as an overload
error, it maps any error inside `has()` to `false`, a field selected on a string or null raises
past every `||`, and its macros fold errors into a boolean. The transpiler below keeps celpy's
code generation and routes these constructs to the functions of this module instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from string import Template
from typing import Any

import celpy
import celpy.evaluation
from celpy import celtypes
from celpy.evaluation import CELEvalError, Phase1Transpiler, Phase2Transpiler, Transpiler

__all__ = ["GLOBAL_NAME", "SpecRunner", "has_field_selection", "logical_and", "logical_or"]

# The name under which this module's functions are reachable from transpiled code.
GLOBAL_NAME = "_irgov_cel_semantics"

Value = Any


_VALUE_TYPES = (celtypes.ListType, celtypes.StringType, celtypes.BytesType, celtypes.IntType, celtypes.UintType,
                celtypes.DoubleType, celtypes.BoolType, celtypes.NullType, celtypes.TimestampType,
                celtypes.DurationType, CELEvalError, bool, int, float, str, list)


def _is_bool(value: Value) -> bool:
    return isinstance(value, celtypes.BoolType | bool)


def _overload_error(operator: str, *values: Value) -> CELEvalError:
    kinds = " and ".join(type(v).__name__ for v in values)
    return CELEvalError(f"no such overload: {operator} of {kinds}", TypeError, None)


def logical_and(left: Value, right: Value) -> Value:
    """`&&`: `false` wins over an error on either side; an error wins over `true`."""
    if (_is_bool(left) and not left) or (_is_bool(right) and not right):
        return celtypes.BoolType(False)
    if _is_bool(left) and _is_bool(right):
        return celtypes.BoolType(True)
    for value in (left, right):
        if isinstance(value, CELEvalError):
            return value
    return _overload_error("_&&_", left, right)


def logical_or(left: Value, right: Value) -> Value:
    """`||`: `true` wins over an error on either side; an error wins over `false`."""
    if (_is_bool(left) and left) or (_is_bool(right) and right):
        return celtypes.BoolType(True)
    if _is_bool(left) and _is_bool(right):
        return celtypes.BoolType(False)
    for value in (left, right):
        if isinstance(value, CELEvalError):
            return value
    return _overload_error("_||_", left, right)


def logical_not(value: Value) -> Value:
    if isinstance(value, CELEvalError):
        return value
    if _is_bool(value):
        return celtypes.BoolType(not value)
    return _overload_error("!_", value)


def result(activation: Any, expression: Callable[[Any], Value]) -> Value:
    """Evaluate one operand, turning whatever it raises into an error value that `&&`, `||`
    and the macros may absorb (celpy's own `result` lets some Python errors escape them)."""
    try:
        return celpy.evaluation.result(activation, expression)
    except CELEvalError as error:
        return error
    except RecursionError:
        raise
    except Exception as exc:
        return CELEvalError(f"{type(exc).__name__}: {exc}", type(exc), exc.args)


def _plain(value: Value) -> Value:
    if isinstance(value, celtypes.BoolType | bool):
        return bool(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.MapType):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, celtypes.ListType):
        return [_plain(v) for v in value]
    if isinstance(value, celtypes.NullType):
        return None
    return value


def _same(left: Value, right: Value) -> bool:
    """Heterogeneous equality: values of different types are unequal (not an error); numbers
    compare by value across int, uint and double; lists and maps element by element."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return bool(left == right)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(v, right[k]) for k, v in left.items())
    if type(left) is not type(right):
        return False
    return bool(left == right)


def equal(left: Value, right: Value) -> Value:
    return celtypes.BoolType(_same(_plain(left), _plain(right)))


def not_equal(left: Value, right: Value) -> Value:
    return celtypes.BoolType(not _same(_plain(left), _plain(right)))


def _ordered(operator: str, compare: Callable[[Any, Any], bool]) -> Callable[[Value, Value], Value]:
    """An ordering on numbers (across int, uint, double), strings or booleans; an error on anything
    else, booleans and numbers included (celpy's booleans are integers)."""
    def ordering(left: Value, right: Value) -> Value:
        a, b = _plain(left), _plain(right)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
        same_kind = type(a) is type(b) and isinstance(a, str | bool | bytes)
        if not (numbers or same_kind or (type(a) is type(b) and isinstance(a, celtypes.TimestampType
                                                                           | celtypes.DurationType))):
            raise CELEvalError(f"no such overload: {operator} of {type(a).__name__} and {type(b).__name__}",
                               TypeError, None)
        return celtypes.BoolType(compare(a, b))

    return ordering


less = _ordered("_<_", lambda a, b: bool(a < b))
less_equal = _ordered("_<=_", lambda a, b: bool(a <= b))
greater = _ordered("_>_", lambda a, b: bool(a > b))
greater_equal = _ordered("_>=_", lambda a, b: bool(a >= b))


_NUMBER_KINDS = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)


def _arithmetic(operator: str, celpy_function: Callable[..., Value]) -> Callable[..., Value]:
    """celpy's arithmetic, refused on booleans and null (celpy's booleans are integers) and
    across number kinds (CEL has no implicit conversion: `1 + 1.0` is an error)."""
    def arithmetic(*operands: Value) -> Value:
        for value in operands:
            if isinstance(value, celtypes.BoolType | bool | celtypes.NullType) or value is None:
                raise CELEvalError(f"no such overload: {operator} of {type(value).__name__}", TypeError, None)
        kinds = {kind for value in operands for kind in _NUMBER_KINDS if type(value) is kind}
        if len(kinds) > 1:
            raise CELEvalError(f"no such overload: {operator} across number types", TypeError, None)
        return celpy_function(*operands)

    return arithmetic


_BASE = celpy.evaluation.base_functions
negate = _arithmetic("-_", _BASE["-_"])
add = _arithmetic("_+_", _BASE["_+_"])
subtract = _arithmetic("_-_", _BASE["_-_"])
multiply = _arithmetic("_*_", _BASE["_*_"])
divide = _arithmetic("_/_", _BASE["_/_"])
modulo = _arithmetic("_%_", _BASE["_%_"])


def size(value: Value) -> Value:
    if isinstance(value, celtypes.StringType | celtypes.BytesType | celtypes.ListType | celtypes.MapType):
        return celtypes.IntType(len(value))
    raise CELEvalError(f"no such overload: size of {type(value).__name__}", TypeError, None)


def member_of(item: Value, container: Value) -> Value:
    """`item in container`: equality as `==` for a list, key presence for a map."""
    if isinstance(container, celtypes.ListType):
        wanted = _plain(item)
        return celtypes.BoolType(any(_same(wanted, _plain(v)) for v in container))
    if isinstance(container, celtypes.MapType):
        wanted = _plain(item)
        return celtypes.BoolType(any(_same(wanted, _plain(k)) for k in container))
    raise CELEvalError(f"no such overload: _in_ of {type(container).__name__}", TypeError, None)


def index(container: Value, key: Value) -> Value:
    """`container[key]`: a list by an integer, a map by a key; a string is not indexable."""
    if isinstance(container, celtypes.ListType):
        if not isinstance(key, celtypes.IntType | celtypes.UintType) or isinstance(key, celtypes.BoolType):
            raise CELEvalError(f"no such overload: list index of {type(key).__name__}", TypeError, None)
        if not 0 <= int(key) < len(container):
            raise CELEvalError(f"index out of range: {int(key)}", IndexError, None)
        return container[int(key)]
    if isinstance(container, celtypes.MapType):
        wanted = _plain(key)
        for candidate, item in container.items():
            if _same(wanted, _plain(candidate)):
                return item
        raise CELEvalError(f"no such key: `{wanted}`", KeyError, None)
    raise CELEvalError(f"no such overload: index of {type(container).__name__}", TypeError, None)


def select(target: Value, name: str) -> Value:
    """`target.name`: a key of a map; anything else (a string, a list, null) raises an error."""
    if isinstance(target, celtypes.MapType):
        key = celtypes.StringType(name)
        if key in target:
            return target[key]
        raise KeyError(name)
    if isinstance(target, _VALUE_TYPES) or target is None:
        raise CELEvalError(f"no such field `{name}` on {type(target).__name__}", TypeError, (name,))
    # Activations and name containers (package-qualified names) select with `get`.
    return target.get(name)


def has(target: Value, name: str) -> Value:
    """`has(target.name)`: presence of a key in a map; an error for anything else."""
    if isinstance(target, celtypes.MapType):
        return celtypes.BoolType(celtypes.StringType(name) in target)
    raise CELEvalError(f"invalid type for has(): {type(target).__name__}", TypeError, (name,))


def _elements(activation: Any, cel_gen: Callable[[Any], Value]) -> Iterable[Value] | CELEvalError:
    source = result(activation, cel_gen)
    if isinstance(source, CELEvalError):
        return source
    if isinstance(source, celtypes.ListType | celtypes.MapType):
        return list(source)
    return _overload_error("comprehension", source)


def _each(activation: Any, variable: str, cel_expr: Callable[[Any], Value],
          elements: Iterable[Value]) -> Iterable[Value]:
    for element in elements:
        nested = activation.nested_activation(vars={variable: element})
        yield result(nested, cel_expr)


def macro_exists(activation: Any, variable: str, cel_expr: Callable[[Any], Value],
                 cel_gen: Callable[[Any], Value]) -> Value:
    elements = _elements(activation, cel_gen)
    if isinstance(elements, CELEvalError):
        return elements
    verdict: Value = celtypes.BoolType(False)
    for value in _each(activation, variable, cel_expr, elements):
        verdict = logical_or(verdict, value)
        if _is_bool(verdict) and verdict:
            return verdict
    return verdict


def macro_all(activation: Any, variable: str, cel_expr: Callable[[Any], Value],
              cel_gen: Callable[[Any], Value]) -> Value:
    elements = _elements(activation, cel_gen)
    if isinstance(elements, CELEvalError):
        return elements
    verdict: Value = celtypes.BoolType(True)
    for value in _each(activation, variable, cel_expr, elements):
        verdict = logical_and(verdict, value)
        if _is_bool(verdict) and not verdict:
            return verdict
    return verdict


def macro_exists_one(activation: Any, variable: str, cel_expr: Callable[[Any], Value],
                     cel_gen: Callable[[Any], Value]) -> Value:
    """`exists_one` is strict: any error is the result."""
    elements = _elements(activation, cel_gen)
    if isinstance(elements, CELEvalError):
        return elements
    count = 0
    for value in _each(activation, variable, cel_expr, elements):
        if isinstance(value, CELEvalError):
            return value
        if not _is_bool(value):
            return _overload_error("exists_one", value)
        count += 1 if value else 0
    return celtypes.BoolType(count == 1)


macro_map = celpy.evaluation.macro_map
macro_filter = celpy.evaluation.macro_filter

_OPERATORS = {"_&&_": "logical_and", "_||_": "logical_or", "!_": "logical_not", "_==_": "equal",
              "_!=_": "not_equal", "_in_": "member_of", "_[_]": "index",
              "_<_": "less", "_<=_": "less_equal", "_>_": "greater", "_>=_": "greater_equal",
              "size": "size", "-_": "negate", "_+_": "add", "_-_": "subtract", "_*_": "multiply",
              "_/_": "divide", "_%_": "modulo"}
_MACROS = ("exists_one", "exists", "all", "map", "filter")


def _field_selection(tree: Any) -> Any:
    """The `member_dot` node when `tree` is an argument list holding a single field selection."""
    node = tree
    while getattr(node, "data", None) != "member_dot":
        children = getattr(node, "children", None)
        if not children or len(children) != 1:
            return None
        node = children[0]
    return node


class _SpecPhase1(Phase1Transpiler):
    def func_name(self, label: str) -> str:
        if label in _OPERATORS:
            return f"{GLOBAL_NAME}.{_OPERATORS[label]}"
        return super().func_name(label)

    def _own_result(self, tree: Any) -> None:
        # Only the template is rewritten: user text enters it later, by substitution.
        if tree.checked_exception is not None:
            template, fields = tree.checked_exception
            text = template.template.replace("celpy.evaluation.result(", f"{GLOBAL_NAME}.result(")
            tree.checked_exception = (Template(text.replace("celpy.evaluation.macro_", f"{GLOBAL_NAME}.macro_")),
                                      fields)

    def expr(self, tree: Any) -> None:
        super().expr(tree)
        self._own_result(tree)

    def conditionalor(self, tree: Any) -> None:
        super().conditionalor(tree)
        self._own_result(tree)

    def conditionaland(self, tree: Any) -> None:
        super().conditionaland(tree)
        self._own_result(tree)

    def member_dot(self, tree: Any) -> None:
        member, name = tree.children
        tree.transpiled = f"{GLOBAL_NAME}.select({member.transpiled}, {str(name.value)!r})"

    def member_dot_arg(self, tree: Any) -> None:
        super().member_dot_arg(tree)
        if str(tree.children[1].value) in _MACROS:
            self._own_result(tree)

    def ident_arg(self, tree: Any) -> None:
        if str(tree.children[0].value) != "has":
            super().ident_arg(tree)
            return
        # The engine refuses at compile time a `has()` whose argument is not a field selection.
        selection = _field_selection(tree.children[1])
        member, name = selection.children
        tree.transpiled = f"{GLOBAL_NAME}.has({member.transpiled}, {str(name.value)!r})"


class _SpecTranspiler(Transpiler):
    def transpile(self) -> None:
        _SpecPhase1(self).visit(self.ast)
        phase_2 = Phase2Transpiler(self)
        phase_2.visit(self.ast)
        self.source_text = "\n".join(phase_2.statements(self.ast))
        self.executable_code = compile(self.source_text, "<cel>", "exec")


class SpecRunner(celpy.CompiledRunner):
    """celpy's compiled runner with the transpiler above."""

    def __init__(self, environment: celpy.Environment, ast: Any,
                 functions: dict[str, Any] | None = None) -> None:
        celpy.Runner.__init__(self, environment, ast, functions)
        self.tp = _SpecTranspiler(ast=ast, activation=self.new_activation())
        self.tp.transpile()


def has_field_selection(tree: Any) -> bool:
    """Whether the argument list of a `has()` call is one field selection (`has(e.f)`)."""
    return _field_selection(tree) is not None
