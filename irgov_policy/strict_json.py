"""Strict reading of untrusted JSON.

The standard `json` module accepts duplicate keys (the last one wins), `NaN` and `Infinity`,
numbers that overflow to infinity, integers no other reader can represent, lone UTF-16
surrogates (`"\\ud800"`), and raises `RecursionError` on deep nesting or `ValueError` on an
integer of more than 4,300 digits. Each of those lets two readers disagree about what a document
says, or escapes as an exception that is not an input error, so each is refused here with the
JSON pointer of the problem.

Two readers give the same answers (a property test holds them to it). The fast one is `jiter`
(Rust), which itself refuses duplicate keys, NaN and Infinity, lone surrogates and invalid UTF-8,
followed by one walk over the decoded values for nesting and number ranges. Any document it
does not accept is read again by the exact one, which names the problem: the C parser of `json`
with a hook per object (duplicate keys) and per number (range), checks on the text that run at C
speed (bracket counts, a search for surrogate escapes) and a walk over containers only. Locating
a problem re-reads the document slowly; only refused documents pay for it. Without `jiter` (a
platform without its wheels) every document takes the exact reader.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import IO, Any

from .errors import InputProblem, IRInputError

_jiter: Any
try:
    import jiter as _jiter
except ImportError:  # pragma: no cover - a platform without its wheels
    _jiter = None

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "json_pointer",
    "loads_strict",
    "read_bounded",
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
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key.encode("utf-8", "backslashreplace").decode("utf-8"))
            seen.add(key)
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


# Integers of up to 15 digits are always within +/-(2^53 - 1); more than 16 digits never are.
_SAFE_DIGITS = 15
_UNSAFE_DIGITS = 17
# A `\\uD800`-`\\uDFFF` escape: a surrogate, paired (an emoji written as two escapes) or lone.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class _UnsafeNumber(Exception):
    pass


def _checked_int(text: str) -> int:
    if len(text) <= _SAFE_DIGITS:
        return int(text)
    if len(text.lstrip("-")) >= _UNSAFE_DIGITS:
        raise _UnsafeNumber
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise _UnsafeNumber
    return value


def _checked_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _UnsafeNumber
    return value


class _Number:
    """A number as written, kept by the slow re-read so that its problem can be located."""

    def __init__(self, text: str, problem: str | None) -> None:
        self.text = text
        self.problem = problem


def _tag_int(text: str) -> Any:
    try:
        return _checked_int(text)
    except _UnsafeNumber:
        digits = len(text.lstrip("-"))
        shown = f"`{text}`" if digits <= 40 else f"of {digits} digits"
        return _Number(text, f"integer {shown} is outside the interoperable range of +/-(2^53 - 1)")


def _tag_float(text: str) -> Any:
    try:
        return _checked_float(text)
    except _UnsafeNumber:
        shown = text if len(text) <= 40 else text[:37] + "..."
        return _Number(text, f"number `{shown}` is too large to be a finite double")


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _escape_surrogates(key: str) -> str:
    """The key with each lone surrogate written as its JSON escape (a backslash, `u` and four hex digits), so the pointer that names
    it can be encoded; every other character (non-ASCII ones too) is kept as it is."""
    return "".join(f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in key)


def _locate_problems(text: str) -> list[InputProblem]:
    """Every unsafe number and lone surrogate of a document, with its pointer (the slow re-read)."""
    found: list[InputProblem] = []
    with contextlib.suppress(ValueError, RecursionError):
        tree = json.loads(text, object_pairs_hook=_Pairs, parse_int=_tag_int, parse_float=_tag_float)
        stack: list[tuple[Any, list[str | int]]] = [(tree, [])]
        while stack:
            node, path = stack.pop()
            if isinstance(node, _Number):
                if node.problem is not None:
                    found.append(InputProblem(json_pointer(path), node.problem))
            elif isinstance(node, str):
                if _has_lone_surrogate(node):
                    found.append(InputProblem(json_pointer(path), "string contains a lone utf-16 surrogate"))
            elif isinstance(node, _Pairs):
                for key, value in reversed(node.pairs):
                    if _has_lone_surrogate(key):
                        found.append(InputProblem(json_pointer([*path, _escape_surrogates(key)]),
                                                  "object key contains a lone utf-16 surrogate"))
                    stack.append((value, [*path, _escape_surrogates(key)]))
            elif isinstance(node, list):
                stack.extend((value, [*path, i]) for i, value in reversed(list(enumerate(node))))
    found.sort(key=lambda p: p.pointer)
    return found


_CONTAINERS = (dict, list)
# Built once: `json.loads` with a hook builds a decoder and its scanner on every call. The C
# scanner keeps no state across calls but a memo of keys, which another thread can only clear.
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant,
                            parse_int=_checked_int, parse_float=_checked_float)
_INFINITIES = (math.inf, -math.inf)


def _fast_read(raw: bytes, max_depth: int) -> Any:
    """The document read by `jiter`, or `_UNREAD` when it or the walk refuses it (the exact reader
    then decides and names the problem). The walk visits each container once, checking what
    `jiter` does not: the nesting and that numbers are interoperable (it reads `1e400` as
    infinity and keeps integers of any size)."""
    try:
        value = _jiter.from_json(raw, allow_inf_nan=False, catch_duplicate_keys=True, cache_mode=False)
    except ValueError:
        return _UNREAD
    kind = type(value)
    if kind is int:
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else _UNREAD
    if kind is float:
        return _UNREAD if value in _INFINITIES else value
    if kind is not dict and kind is not list:
        return value
    level = [value]
    depth = 1
    while level:
        if depth > max_depth:
            return _UNREAD
        deeper = []
        for node in level:
            for inner in node.values() if type(node) is dict else node:
                kind = type(inner)
                if kind is str:
                    continue
                if kind is dict or kind is list:
                    deeper.append(inner)
                elif kind is int:
                    if not -MAX_SAFE_INTEGER <= inner <= MAX_SAFE_INTEGER:
                        return _UNREAD
                elif kind is float and inner in _INFINITIES:
                    return _UNREAD
        level = deeper
        depth += 1
    return value


_UNREAD: Any = object()


def _too_deep(text: str, value: Any, max_depth: int) -> bool:
    """Whether a parsed document nests deeper than `max_depth` containers. Counting brackets in
    the text settles most documents at C speed; others are walked level by level, visiting
    containers only."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    level = [value]
    for _ in range(max_depth):
        deeper = []
        for node in level:
            for inner in node.values() if type(node) is dict else node:
                if type(inner) in _CONTAINERS:
                    deeper.append(inner)
        if not deeper:
            return False
        level = deeper
    return True


def read_bounded(stream: IO[bytes], max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read at most `max_bytes` + 1 bytes from a binary stream (a file, stdin, a request body):
    enough to tell a document over the limit without holding more of it. Raises `IRInputError`
    when the stream has more than `max_bytes` bytes."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise IRInputError([InputProblem("", f"document exceeds the limit of {max_bytes} bytes")])
    return bytes(data)


def loads_strict(
    data: str | bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Parse untrusted JSON, refusing duplicate keys, NaN/Infinity, numbers that overflow, integers
    outside +/-(2^53 - 1), lone surrogates, deep nesting and documents larger than `max_bytes`.
    Raises `IRInputError`, never another exception."""
    if isinstance(data, str):
        if len(data) > max_bytes:  # a character is at least one byte: too large without encoding
            raise IRInputError([InputProblem("", f"document of {len(data)} characters exceeds the limit of "
                                                 f"{max_bytes} bytes")])
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise IRInputError([InputProblem("", f"document contains a lone utf-16 surrogate at character "
                                                 f"{exc.start}")]) from None
    else:
        raw = data if type(data) is bytes else bytes(data)
    if len(raw) > max_bytes:
        raise IRInputError([InputProblem("", f"document of {len(raw)} bytes exceeds the limit of {max_bytes} bytes")])
    if _jiter is not None:
        value = _fast_read(raw, max_depth)
        if value is not _UNREAD:
            return value
    return _exact_read(data if isinstance(data, str) else None, raw, max_depth)


def _exact_read(text: str | None, raw: bytes, max_depth: int) -> Any:
    """The exact reader (see the module's docstring): the value, or `IRInputError` naming the problem."""
    if text is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise IRInputError([InputProblem("", f"document is not valid utf-8 at byte {exc.start}")]) from None
    try:
        value = _DECODER.decode(text)
    except _DuplicateKey as dup:
        raise IRInputError([InputProblem(_locate_duplicate(text, dup.key), f"duplicate key `{dup.key}`")]) from None
    except _BadConstant as bad:
        raise IRInputError([InputProblem("", f"`{bad.name}` is not valid JSON")]) from None
    except _UnsafeNumber:
        raise IRInputError(_locate_problems(text) or [InputProblem("", "a number is out of range")]) from None
    except json.JSONDecodeError as exc:
        raise IRInputError(
            [InputProblem("", f"invalid json at line {exc.lineno} column {exc.colno}: {exc.msg.lower()}")]
        ) from None
    except RecursionError:
        raise IRInputError([InputProblem("", f"nesting deeper than {max_depth} levels")]) from None
    if type(value) in _CONTAINERS and _too_deep(text, value, max_depth):
        _check_depth(text, max_depth)  # raises, naming the offset
        raise IRInputError([InputProblem("", f"nesting deeper than {max_depth} levels")])
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None:
        problems = [p for p in _locate_problems(text) if "surrogate" in p.message]
        if problems:
            raise IRInputError(problems)
    return value
