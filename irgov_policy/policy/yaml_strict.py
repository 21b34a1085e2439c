"""Strict YAML reading with source positions.

YAML has features that let two readers (or a reviewer and the engine) disagree about what a
pack says: duplicate keys (the last silently wins), anchors and aliases (a value defined far
away), merge keys, and YAML 1.1 booleans (`no` meaning false, the "Norway problem"). Each is
refused here with its `file:line:col`. The result is plain Python data plus a map from every
value's path to its position, so later stages (schema, CEL compilation) can point at the source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import PackLoadError, SourceProblem

__all__ = ["DEFAULT_MAX_PACK_BYTES", "Located", "Position", "load_yaml_strict"]

DEFAULT_MAX_PACK_BYTES = 1024 * 1024
_MAX_DEPTH = 32

# Plain scalars that YAML 1.1 reads as booleans but YAML 1.2 reads as strings. Refused unquoted
# because the reader cannot know which one the author meant.
_YAML11_BOOLEANS = frozenset({"y", "n", "yes", "no", "on", "off"})
_BOOL_TAG = "tag:yaml.org,2002:bool"
# Anchored at both ends: the resolver only `match`es the start, and an unanchored pattern would
# tag `Trueish` or `false positives are rare` as booleans that the constructor cannot read.
_CORE_BOOLEANS = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """A 1-based line and column, plus the scalar's style and raw source span for offset mapping."""

    line: int
    column: int
    style: str | None = None
    start: int = 0
    end: int = 0


@dataclass
class Located:
    """A loaded document: plain data, the position of every path, the source text and file name."""

    data: Any
    positions: dict[Path, Position]
    source: str
    file: str
    key_positions: dict[Path, Position] = field(default_factory=dict)

    def position(self, path: Path) -> Position:
        """The position of `path`, or of its closest located ancestor."""
        while path not in self.positions and path:
            path = path[:-1]
        return self.positions.get(path, Position(1, 1))

    def problem(self, path: Path, message: str) -> SourceProblem:
        pos = self.position(path)
        return SourceProblem(self.file, pos.line, pos.column, message)

    def offset_position(self, path: Path, offset: int) -> tuple[int, int]:
        """Source line and column of character `offset` inside the string scalar at `path`."""
        pos = self.position(path)
        value = _value_at(self.data, path)
        if not isinstance(value, str) or pos.end <= pos.start:
            return pos.line, pos.column
        return _map_offset(self.source, pos, value, offset)


def _value_at(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _map_offset(source: str, pos: Position, value: str, offset: int) -> tuple[int, int]:
    """Align `value` with its raw source span, matching non-blank characters in order.

    Folded and literal block scalars strip indentation and fold line breaks, so the offset in
    the value is not the offset in the file; matching characters in order survives both."""
    offset = max(0, min(offset, len(value)))
    raw_index = pos.start
    if pos.style in ("|", ">"):
        # skip the block indicator line
        newline = source.find("\n", pos.start, pos.end)
        raw_index = newline + 1 if newline != -1 else pos.start
    elif pos.style in ('"', "'"):
        raw_index = pos.start + 1
    target = raw_index
    for i, char in enumerate(value):
        if char.isspace():
            if i == offset:
                break
            continue
        found = source.find(char, raw_index, pos.end)
        if found == -1:
            return pos.line, pos.column
        raw_index = found + 1
        target = found
        if i >= offset:
            break
    else:
        target = raw_index
    line = source.count("\n", 0, target) + 1
    line_start = source.rfind("\n", 0, target) + 1
    return line, target - line_start + 1


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that keeps `true`/`false` as the only booleans (YAML 1.2 core schema)."""


# Replace the YAML 1.1 boolean resolver with the core-schema one: `yes`/`no`/`on`/`off` stay
# plain strings here and are then refused as ambiguous by `_walk`.
_StrictLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
for _first in "tTfF":
    _StrictLoader.yaml_implicit_resolvers.setdefault(_first, []).insert(0, (_BOOL_TAG, _CORE_BOOLEANS))

_FastLoader: type[Any] | None = None
if getattr(yaml, "__with_libyaml__", False):
    class _CStrictLoader(yaml.CSafeLoader):
        """The same resolvers on libyaml's parser: packs parse ~15x faster. Its marks have no
        buffer and it gives plain scalars the style '' (None in the Python parser); a document
        with any problem is read again by `_StrictLoader`, whose messages are the reference."""

    _CStrictLoader.yaml_implicit_resolvers = _StrictLoader.yaml_implicit_resolvers
    _FastLoader = _CStrictLoader


def _pos(node: Node) -> Position:
    style = (node.style or None) if isinstance(node, ScalarNode) else None
    return Position(node.start_mark.line + 1, node.start_mark.column + 1, style,
                    node.start_mark.index, node.end_mark.index)


def _walk(node: Node, path: Path, file: str, positions: dict[Path, Position],
          key_positions: dict[Path, Position], problems: list[SourceProblem],
          loader: Any, depth: int) -> Any:
    positions[path] = _pos(node)
    if depth > _MAX_DEPTH:
        problems.append(SourceProblem(file, node.start_mark.line + 1, node.start_mark.column + 1,
                                      f"nesting deeper than {_MAX_DEPTH} levels"))
        return None
    if isinstance(node, ScalarNode):
        if not node.style and node.value.lower() in _YAML11_BOOLEANS:
            problems.append(SourceProblem(
                file, node.start_mark.line + 1, node.start_mark.column + 1,
                f"ambiguous value `{node.value}` (a boolean in yaml 1.1, a string in yaml 1.2): "
                f"quote it, or write `true`/`false`"))
            return node.value
        if node.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                            "tag:yaml.org,2002:null", _BOOL_TAG):
            kind = node.tag.rsplit(":", 1)[-1]
            # A plain scalar got its tag implicitly (`2024-01-01` reads as a timestamp): say so.
            mark = node.start_mark
            explicit = mark.buffer is None or mark.buffer[mark.pointer:mark.pointer + 1] == "!"
            message = (f"ambiguous value `{node.value}` (yaml reads it as a {kind}): quote it"
                       if not node.style and not explicit else f"unsupported tag `{node.tag}`")
            problems.append(SourceProblem(file, node.start_mark.line + 1, node.start_mark.column + 1, message))
            return None
        return loader.construct_object(node, deep=True)
    if isinstance(node, SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            problems.append(SourceProblem(file, node.start_mark.line + 1, node.start_mark.column + 1,
                                          f"unsupported tag `{node.tag}`"))
        return [_walk(child, (*path, i), file, positions, key_positions, problems, loader, depth + 1)
                for i, child in enumerate(node.value)]
    if isinstance(node, MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            problems.append(SourceProblem(file, node.start_mark.line + 1, node.start_mark.column + 1,
                                          f"unsupported tag `{node.tag}`"))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(SourceProblem(file, line, col, "merge keys (`<<`) are not allowed"))
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                shown = key_node.value if isinstance(key_node, ScalarNode) else "..."
                problems.append(SourceProblem(file, line, col, f"key `{shown}` must be a string"))
                continue
            key = key_node.value
            if key in result:
                first = key_positions[(*path, key)]
                problems.append(SourceProblem(
                    file, line, col, f"duplicate key `{key}` (first defined at line {first.line})"))
                continue
            key_positions[(*path, key)] = _pos(key_node)
            result[key] = _walk(value_node, (*path, key), file, positions, key_positions, problems,
                                loader, depth + 1)
        return result
    raise AssertionError(f"unexpected yaml node {type(node).__name__}")  # pragma: no cover


def _refuse_anchors(text: str, file: str, loader: type[Any]) -> list[SourceProblem]:
    problems: list[SourceProblem] = []
    for event in yaml.parse(text, Loader=loader):
        mark = event.start_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent):
            problems.append(SourceProblem(file, line, column, f"aliases (`*{anchor}`) are not allowed"))
        elif anchor:
            problems.append(SourceProblem(file, line, column, f"anchors (`&{anchor}`) are not allowed"))
    return problems


def _documents(text: str, loader: type[Any]) -> Iterator[Node]:
    yield from yaml.compose_all(text, Loader=loader)


def load_yaml_strict(text: str | bytes, file: str, *, max_bytes: int = DEFAULT_MAX_PACK_BYTES) -> Located:
    """Parse one YAML document strictly; raise `PackLoadError` with every problem found."""
    size = len(text.encode("utf-8") if isinstance(text, str) else text)
    if size > max_bytes:
        raise PackLoadError([SourceProblem(file, 1, 1, f"file of {size} bytes exceeds the limit of {max_bytes}")])
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PackLoadError([SourceProblem(file, 1, 1, f"not utf-8 text: byte {exc.start} is invalid")]) from None
    if _FastLoader is not None:
        try:
            return _load(text, file, _FastLoader)
        except (PackLoadError, yaml.YAMLError):
            pass  # read again below: the Python parser's messages are the ones shown
    return _load(text, file, _StrictLoader)


def _load(text: str, file: str, loader_type: type[Any]) -> Located:
    try:
        problems = _refuse_anchors(text, file, loader_type)
        if problems:
            raise PackLoadError(problems)
        nodes = list(_documents(text, loader_type))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise PackLoadError([SourceProblem(file, line, col, f"invalid yaml: {exc.problem or exc}")]) from None
    except yaml.reader.ReaderError as exc:
        # Not a marked error: locate the offending character from its offset ourselves.
        position = max(0, min(exc.position, len(text)))
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        shown = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise PackLoadError([SourceProblem(file, line, column,
                                           f"invalid yaml: unacceptable character {shown}")]) from None
    except yaml.YAMLError as exc:
        first = str(exc).split("\n", 1)[0]
        raise PackLoadError([SourceProblem(file, 1, 1, f"invalid yaml: {first}")]) from None
    if len(nodes) != 1:
        where = nodes[1].start_mark.line + 1 if len(nodes) > 1 else 1
        raise PackLoadError([SourceProblem(file, where, 1, f"expected exactly one yaml document, found {len(nodes)}")])
    positions: dict[Path, Position] = {}
    key_positions: dict[Path, Position] = {}
    problems = []
    loader = loader_type("")
    data = _walk(nodes[0], (), file, positions, key_positions, problems, loader, 0)
    if problems:
        raise PackLoadError(problems)
    return Located(data=data, positions=positions, source=text, file=file, key_positions=key_positions)


def schema_problems(located: Located, validator: jsonschema.protocols.Validator,
                    describe: Callable[[jsonschema.ValidationError], str]) -> list[SourceProblem]:
    """Every schema error of a located document, at the source position of what it is about
    (an unknown key is pointed at itself, not at its parent mapping), sorted by position."""
    problems: list[SourceProblem] = []
    for error in validator.iter_errors(located.data):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            key = located.key_positions.get((*path, extra[0])) if extra else None
            if key is not None:
                problems.append(SourceProblem(located.file, key.line, key.column, describe(error)))
                continue
        problems.append(located.problem(path, describe(error)))
    problems.sort(key=lambda p: (p.line, p.column))
    return problems
