"""Strict reading of untrusted JSON.

The standard `json` module accepts duplicate keys (the last one wins), `NaN` and `Infinity`,
and raises `RecursionError` on deep nesting. Each of those lets two readers disagree about
what a document says, so each is refused here with the JSON pointer of the problem.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from .errors import InputProblem, IRInputError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "json_pointer",
    "loads_strict",
]

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64
# RFC 8785 serialises numbers as IEEE doubles; integers beyond this cannot round-trip.
MAX_SAFE_INTEGER = 2**53 - 1

# Strings are matched whole so that brackets inside them are not counted as nesting.
_NESTING_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_pointer(path: tuple[str | int, ...] | list[str | int]) -> str:
    """Render a path as an RFC 6901 JSON pointer."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


class _BadConstant(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise _BadConstant(name)


def _check_depth(text: str, max_depth: int) -> None:
    depth = 0
    for match in _NESTING_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                raise IRInputError(
                    [InputProblem("", f"nesting deeper than {max_depth} levels at offset {match.start()}")]
                )
        elif token in "]}":
            depth -= 1


def _locate_duplicate(text: str, key: str) -> str:
    """Best-effort pointer of a duplicate key: re-parse keeping pairs to find its object."""

    found: list[str] = []

    def walk(node: Any, path: list[str | int]) -> None:
        if found:
            return
        if isinstance(node, _Pairs):
            seen: set[str] = set()
            for k, v in node.pairs:
                if k in seen:
                    found.append(json_pointer([*path, k]))
                    return
                seen.add(k)
                walk(v, [*path, k])
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, [*path, i])

    with contextlib.suppress(ValueError, RecursionError):
        walk(json.loads(text, object_pairs_hook=_Pairs), [])
    return found[0] if found else "/" + key


class _Pairs:
    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


def _unsafe_integers(node: Any, path: list[str | int], out: list[InputProblem]) -> None:
    if isinstance(node, bool):
        return
    if isinstance(node, int):
        if abs(node) > MAX_SAFE_INTEGER:
            out.append(
                InputProblem(
                    json_pointer(path),
                    f"integer `{node}` is outside the interoperable range of +/-(2^53 - 1)",
                )
            )
    elif isinstance(node, dict):
        for k, v in node.items():
            _unsafe_integers(v, [*path, k], out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _unsafe_integers(v, [*path, i], out)


def loads_strict(
    data: str | bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Parse untrusted JSON, refusing duplicate keys, NaN/Infinity, deep nesting, unsafe integers
    and documents larger than `max_bytes`. Raises `IRInputError`."""
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        raise IRInputError([InputProblem("", f"document of {size} bytes exceeds the limit of {max_bytes} bytes")])
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IRInputError([InputProblem("", f"document is not valid utf-8 at byte {exc.start}")]) from None
    else:
        text = data
    _check_depth(text, max_depth)
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant)
    except _DuplicateKey as dup:
        raise IRInputError([InputProblem(_locate_duplicate(text, dup.key), f"duplicate key `{dup.key}`")]) from None
    except _BadConstant as bad:
        raise IRInputError([InputProblem("", f"`{bad.name}` is not valid JSON")]) from None
    except json.JSONDecodeError as exc:
        raise IRInputError(
            [InputProblem("", f"invalid json at line {exc.lineno} column {exc.colno}: {exc.msg.lower()}")]
        ) from None
    except RecursionError:
        raise IRInputError([InputProblem("", f"nesting deeper than {max_depth} levels")]) from None
    problems: list[InputProblem] = []
    _unsafe_integers(value, [], problems)
    if problems:
        raise IRInputError(problems)
    return value
