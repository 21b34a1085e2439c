"""Lint rule packs: every problem at once, each at `file:line:col`, as an error or a warning.

Stages: strict loading and the schema (`load_pack`), composition problems across the packs
linted together (duplicate pack names and rule ids, conflicting constants), CEL compilation on
every available engine (a pack must mean the same on each), then semantic checks a compiler
cannot make: constants that are referenced but never defined (error) or defined but never used
(warning), and rules or tier entries that can never fire because the actions they name are in
no vocabulary (error when nothing they name is known, warning for each unknown name).

The vocabulary is the union of the linted packs' vocabularies and, unless turned off, the
shipped baseline's: a plugin pack is evaluated next to the baseline, so its rules may name the
baseline's actions without declaring them again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import PackLoadError, PolicyError, SourceProblem
from .cel.base import DECLARED_VARIABLES, CelCompileError, CelEngine, available_engines, create_engine
from .cel.celpy_engine import BUILTIN_FUNCTION_NAMES
from .cel_text import blank_strings, constant_references
from .functions import PROJECT_FUNCTIONS, STRING_FUNCTIONS
from .lint_help import did_you_mean, field_findings, undeclared_name
from .pack import PACK_SUFFIX, RulePack, RuleSpec, load_pack
from .shipped import baseline_pack_path

__all__ = ["ERROR", "WARNING", "LintReport", "constant_references", "lint_paths"]

ERROR = "error"
WARNING = "warning"

_ACTION_EQUALS = re.compile(r"^step\s*\.\s*action\s*==\s*(\"[^\"\\]*\"|'[^'\\]*')$|^(\"[^\"\\]*\"|'[^'\\]*')\s*==\s*step\s*\.\s*action$")
_ACTION_IN = re.compile(r"^step\s*\.\s*action\s+in\s+\[([^\]]*)\]$")
_ACTION_LITERAL = re.compile(r"step\s*\.\s*action\s*==\s*(\"[^\"\\]*\"|'[^'\\]*')|(\"[^\"\\]*\"|'[^'\\]*')\s*==\s*step\s*\.\s*action")
_STRING = re.compile(r"\"([^\"\\]*)\"|'([^'\\]*)'")


@dataclass
class LintReport:
    """Problems found in the linted files (`severity` is `error` or `warning`)."""

    files: list[str] = field(default_factory=list)
    problems: list[SourceProblem] = field(default_factory=list)

    @property
    def errors(self) -> list[SourceProblem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[SourceProblem]:
        return [p for p in self.problems if p.severity == WARNING]

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [{"file": p.file, "line": p.line, "column": p.column, "severity": p.severity,
                          "message": p.message} for p in self.problems],
        }


def _top_level_conjuncts(source: str) -> list[str]:
    """The parts of `a && b && c` at nesting depth 0 (the whole expression when there is none)."""
    blank = blank_strings(source)
    parts: list[str] = []
    depth, start = 0, 0
    i = 0
    while i < len(blank):
        char = blank[i]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and blank.startswith("&&", i):
            parts.append(source[start:i].strip())
            start = i + 2
            i += 1
        elif depth == 0 and blank.startswith("||", i):
            return [source.strip()]
        i += 1
    parts.append(source[start:].strip())
    return parts


def _literal(token: str) -> str:
    return token[1:-1]


def _expand(paths: Iterable[str | Path], problems: list[SourceProblem]) -> list[Path]:
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob(f"*{PACK_SUFFIX}") if p.is_file())
            if not found:
                problems.append(SourceProblem(str(path), 1, 1, f"no rule packs (`*{PACK_SUFFIX}`) in this directory",
                                              WARNING))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(SourceProblem(str(path), 1, 1, "no such file or directory"))
    return files


class _Linter:
    def __init__(self, packs: list[RulePack], engines: list[CelEngine], vocabulary: frozenset[str],
                 functions: Iterable[str] = ()) -> None:
        self.packs = packs
        self.function_names = BUILTIN_FUNCTION_NAMES | set(PROJECT_FUNCTIONS) | set(STRING_FUNCTIONS) | set(functions)
        self.engines = engines
        self.vocabulary = vocabulary
        self.problems: list[SourceProblem] = []
        self.constants: dict[str, tuple[RulePack, tuple[str, ...]]] = {}
        self.used: set[str] = set()

    def error(self, pack: RulePack, path: tuple[str | int, ...], message: str, offset: int | None = None) -> None:
        self.problems.append(pack.problem(path, message, offset))

    def warn(self, pack: RulePack, path: tuple[str | int, ...], message: str, offset: int | None = None) -> None:
        self.problems.append(replace(pack.problem(path, message, offset), severity=WARNING))

    def run(self) -> None:
        self.composition()
        for pack in self.packs:
            for spec in pack.rules:
                self.rule(pack, spec)
            self.tiers(pack)
        self.unused_constants()

    def composition(self) -> None:
        names: dict[str, RulePack] = {}
        ids: dict[str, tuple[RulePack, tuple[str | int, ...]]] = {}
        for pack in self.packs:
            if pack.name in names:
                self.error(pack, ("metadata", "name"),
                           f"pack `{pack.name}` is also defined in `{names[pack.name].file}`")
            names.setdefault(pack.name, pack)
            for name, values in pack.constants.items():
                if name in self.constants and self.constants[name][1] != values:
                    other = self.constants[name][0]
                    line, _ = other.locate(("constants", name))
                    self.error(pack, ("constants", name),
                               f"constant `{name}` differs from its definition in `{other.file}`:{line}")
                self.constants.setdefault(name, (pack, values))
            specs: list[Any] = [*pack.tiers, *pack.rules]
            for spec in specs:
                if spec.id in ids and ids[spec.id][0] is not pack:
                    other, path = ids[spec.id]
                    line, _ = other.locate((*path, "id"))
                    self.error(pack, (*spec.path, "id"), f"rule id `{spec.id}` is already used in `{other.file}`:{line}")
                ids.setdefault(spec.id, (pack, spec.path))

    def rule(self, pack: RulePack, spec: RuleSpec) -> None:
        where = (*spec.path, "when")
        if spec.when is not None:
            compiled = self.compile(pack, spec, where)
            for name, offset in constant_references(spec.when):
                self.used.add(name)
                if name not in self.constants:
                    self.error(pack, where, f"rule `{spec.id}`: unknown constant `{name}`"
                               + did_you_mean(name, self.constants), offset)
            if compiled:
                self.when_actions(pack, spec, where)
                for finding in field_findings(spec.when, spec.scope):
                    report = self.error if finding.severity == ERROR else self.warn
                    report(pack, where, f"rule `{spec.id}`: {finding.message}", finding.offset)
        match = spec.match
        if match is None:
            return
        names: list[tuple[str | None, tuple[str, ...]]] = [
            (match.actions, ("actions",)), (match.tokens_any_of, ("tokens", "anyOf")),
            (match.value_any_of, ("value", "anyOf"))]
        for constant, part in names:
            if constant is None:
                continue
            self.used.add(constant)
            if constant not in self.constants:
                self.error(pack, (*spec.path, "match", *part), f"rule `{spec.id}`: unknown constant `{constant}`"
                           + did_you_mean(constant, self.constants))
        if match.actions is not None and match.actions in self.constants and self.vocabulary:
            actions = self.constants[match.actions][1]
            unknown = [a for a in actions if a not in self.vocabulary]
            path = (*spec.path, "match", "actions")
            if unknown and len(unknown) == len(actions):
                self.error(pack, path, f"rule `{spec.id}` can never fire: no action of `{match.actions}` "
                                       f"is in a vocabulary")
            for action in unknown if len(unknown) < len(actions) else ():
                self.warn(pack, path, f"rule `{spec.id}`: action `{action}` of `{match.actions}` is in no vocabulary")

    def compile(self, pack: RulePack, spec: RuleSpec, where: tuple[str | int, ...]) -> bool:
        assert spec.when is not None
        failed_first = False
        for position, engine in enumerate(self.engines):
            try:
                engine.compile(spec.when)
            except CelCompileError as exc:
                message = exc.message + self.help(spec.when, exc)
                if position == 0:
                    self.error(pack, where, f"rule `{spec.id}`: {message}", exc.offset)
                    failed_first = True
                    break
                self.error(pack, where, f"rule `{spec.id}`: {message} (engine `{engine.name}` only)", exc.offset)
                return False
        return not failed_first

    def help(self, source: str, exc: CelCompileError) -> str:
        """A near match for an undeclared function or variable."""
        name = undeclared_name(exc.message)
        if name is None:
            return ""
        if "." not in name and re.search(re.escape(name) + r"\s*\(", source):
            return did_you_mean(name, self.function_names)
        return did_you_mean(name.split(".", 1)[0], DECLARED_VARIABLES)

    def when_actions(self, pack: RulePack, spec: RuleSpec, where: tuple[str | int, ...]) -> None:
        """Literal actions compared with `step.action`: a conjunct no known action can satisfy
        makes the rule unreachable; any other unknown literal is worth a warning."""
        assert spec.when is not None
        if not self.vocabulary or spec.scope != "step":
            return
        for part in _top_level_conjuncts(spec.when):
            equals = _ACTION_EQUALS.match(part)
            inside = _ACTION_IN.match(part)
            literals: list[str] = []
            if equals:
                literals = [_literal(equals.group(1) or equals.group(2))]
            elif inside:
                items = [item.strip() for item in inside.group(1).split(",") if item.strip()]
                if items and all(_STRING.fullmatch(item) for item in items):
                    literals = [_literal(item) for item in items]
            if literals and not any(a in self.vocabulary for a in literals):
                offset = spec.when.find(part)
                shown = ", ".join(f"`{a}`" for a in literals)
                self.error(pack, where, f"rule `{spec.id}` can never fire: {shown} is in no vocabulary", offset)
                return
        blank = blank_strings(spec.when)
        for match in _ACTION_LITERAL.finditer(blank):
            start = match.start(1) if match.group(1) is not None else match.start(2)
            token = _STRING.match(spec.when, start)
            if token is not None:
                action = token.group(1) if token.group(1) is not None else token.group(2)
                if action not in self.vocabulary:
                    self.warn(pack, where, f"rule `{spec.id}`: action `{action}` is in no vocabulary", start)

    def tiers(self, pack: RulePack) -> None:
        if not self.vocabulary:
            return
        for spec in pack.tiers:
            known = [a for a in spec.actions if a in self.vocabulary]
            prefixes = [p for p in spec.prefixes if any(a.startswith(p) for a in self.vocabulary)]
            if not known and not prefixes:
                self.error(pack, (*spec.path, "id"),
                           f"tier entry `{spec.id}` can never apply: none of its actions or prefixes is in a vocabulary")
                continue
            for action in sorted(spec.actions - set(known)):
                index = self._index(pack, (*spec.path, "actions"), action)
                self.warn(pack, (*spec.path, "actions", index), f"tier entry `{spec.id}`: action `{action}` is in no vocabulary")
            for prefix in spec.prefixes:
                if prefix not in prefixes:
                    index = self._index(pack, (*spec.path, "prefixes"), prefix)
                    self.warn(pack, (*spec.path, "prefixes", index),
                              f"tier entry `{spec.id}`: prefix `{prefix}` matches no action of a vocabulary")

    @staticmethod
    def _index(pack: RulePack, path: tuple[str | int, ...], value: str) -> int:
        data: Any = pack.source.data if pack.source is not None else {}
        for part in path:
            if isinstance(data, Mapping) or (isinstance(data, list) and isinstance(part, int)):
                data = data[part]  # type: ignore[index]
            else:
                data = None
        return data.index(value) if isinstance(data, list) and value in data else 0

    def unused_constants(self) -> None:
        for pack in self.packs:
            for name in pack.constants:
                if name not in self.used and self.constants.get(name, (None,))[0] is pack:
                    self.warn(pack, ("constants", name), f"constant `{name}` is never used")


def _engines(names: Sequence[str] | None, functions: Mapping[str, Callable[..., Any]]) -> list[CelEngine]:
    chosen = list(names) if names else available_engines()
    return [create_engine(name, functions) for name in chosen]


def lint_paths(paths: Iterable[str | Path], *, engines: Sequence[str] | None = None,
               functions: Mapping[str, Callable[..., Any]] | None = None,
               baseline_vocabulary: bool = True) -> LintReport:
    """Lint the packs at `paths` (files, or directories searched for `*.irgov.yaml`) together.
    `engines`: CEL engines to compile with (default every available one); `functions`: extra
    CEL functions (plugins') the packs may call. Raises `PolicyError` only for an unusable
    engine; every problem in the packs is in the report."""
    report = LintReport()
    problems: list[SourceProblem] = []
    files = _expand(paths, problems)
    report.files = [str(f) for f in files]
    packs: list[RulePack] = []
    for file in files:
        try:
            packs.append(load_pack(file))
        except PackLoadError as exc:
            problems.extend(exc.problems)
    vocabulary: set[str] = set()
    for pack in packs:
        vocabulary.update(pack.actions or ())
    if baseline_vocabulary:
        try:
            vocabulary.update(load_pack(baseline_pack_path()).actions or ())
        except PackLoadError as exc:  # pragma: no cover - the shipped pack is tested
            raise PolicyError(f"the shipped baseline pack does not load: {exc}") from None
    linter = _Linter(packs, _engines(engines, functions or {}), frozenset(vocabulary), functions=functions or ())
    linter.run()
    problems.extend(linter.problems)
    order = {str(f): i for i, f in enumerate(files)}
    report.problems = sorted(problems, key=lambda p: (order.get(p.file, -1), p.line, p.column))
    return report
