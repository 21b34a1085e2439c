"""Policy test files (`*.irgov-test.yaml`): which packs to load and cases with expected decisions.

Loaded like rule packs: strict YAML with positions (`yaml_strict`), the shipped draft-07 schema
(`irgov schema policytest`), then what the schema cannot say (unique case names, readable IR
files). Every problem is a `SourceProblem` at `file:line:col`. Running the cases is
`testing_runner`'s job.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from ..errors import PackLoadError, PolicyTestLoadError, SourceProblem
from .yaml_strict import DEFAULT_MAX_PACK_BYTES, Located, load_yaml_strict, schema_problems

__all__ = [
    "TEST_SUFFIX",
    "ExpectedStep",
    "ExpectedViolation",
    "Expectation",
    "PolicyTestCase",
    "PolicyTestFile",
    "find_policy_tests",
    "load_policy_test",
    "parse_policy_test",
    "policytest_schema",
]

TEST_SUFFIX = ".irgov-test.yaml"
# An IR file is read whole; the strict JSON reader applies its own, smaller, limits after.
_MAX_IR_FILE_BYTES = 64 * 1024 * 1024


@cache
def policytest_schema() -> dict[str, Any]:
    """The shipped JSON Schema (draft-07) of a policy test file."""
    text = resources.files("irgov_policy.policy").joinpath("schemas/policytest.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(policytest_schema())


@dataclass(frozen=True)
class ExpectedViolation:
    """An expected enforced violation; `step` and `rule` are compared only when given."""

    code: str
    step: int | None = None
    rule: str | None = None
    step_given: bool = False

    def matches(self, code: str, step: int | None, rule: str | None) -> bool:
        return (code == self.code and (not self.step_given or step == self.step)
                and (self.rule is None or rule == self.rule))

    def __str__(self) -> str:
        where = ""
        if self.step_given:
            where = " on the ir" if self.step is None else f" at step {self.step}"
        rule = f" from rule `{self.rule}`" if self.rule else ""
        return f"`{self.code}`{where}{rule}"


@dataclass(frozen=True)
class ExpectedStep:
    index: int
    tier: int | None = None
    hits: tuple[str, ...] = ()
    not_hits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Expectation:
    """What a case expects; every field left out is not checked."""

    status: str | None = None
    tier: int | None = None
    requires_approval: bool | None = None
    violations: tuple[ExpectedViolation, ...] | None = None
    hits: tuple[str, ...] = ()
    not_hits: tuple[str, ...] = ()
    steps: tuple[ExpectedStep, ...] = ()


@dataclass(frozen=True)
class PolicyTestCase:
    """One case: the IR (a dict already merged with the file's defaults, or the bytes of its
    `irFile`) and what the decision must be. `line` is where the case starts in its file."""

    name: str
    ir: Mapping[str, Any] | bytes
    expect: Expectation
    line: int
    description: str = ""
    ir_file: str | None = None


@dataclass(frozen=True)
class PolicyTestFile:
    name: str
    file: str
    packs: tuple[Path, ...]
    cases: tuple[PolicyTestCase, ...]
    description: str = ""


def _schema_message(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    prefix = f"`{where}`: " if where else ""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return prefix + "unknown field " + ", ".join(f"`{e}`" for e in extra)
    if error.validator == "oneOf" and "irFile" in error.schema.get("properties", {}):
        return prefix + "a case has either `ir` or `irFile`, not both nor neither"
    if error.validator == "const":
        return prefix + f"must be `{error.validator_value}`"
    if error.validator == "enum":
        return prefix + "must be one of " + ", ".join(f"`{v}`" for v in error.validator_value)
    if error.validator == "minProperties" and error.validator_value == 1:
        return prefix + "expects nothing: give at least one expectation"
    message = str(error.message).replace("'", "`").replace("is a required property", "is required")
    return prefix + message[:1].lower() + message[1:]


def _merge_defaults(ir: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The case's IR over `defaults.ir`; each step of it over `defaults.step` (shallow: a case
    replaces a whole default field, it never merges into it)."""
    merged: dict[str, Any] = {**defaults.get("ir", {}), **ir}
    step_defaults = defaults.get("step", {})
    steps = merged.get("steps")
    if step_defaults and isinstance(steps, list):
        merged["steps"] = [{**step_defaults, **s} if isinstance(s, Mapping) else s for s in steps]
    return merged


def _expectation(raw: Mapping[str, Any]) -> Expectation:
    violations = None
    if "violations" in raw:
        items: list[ExpectedViolation] = []
        for item in raw["violations"]:
            if isinstance(item, str):
                items.append(ExpectedViolation(item))
            else:
                items.append(ExpectedViolation(item["code"], item.get("step"), item.get("rule"), "step" in item))
        violations = tuple(items)
    return Expectation(
        status=raw.get("status"),
        tier=raw.get("tier"),
        requires_approval=raw.get("requiresApproval"),
        violations=violations,
        hits=tuple(raw.get("hits", ())),
        not_hits=tuple(raw.get("notHits", ())),
        steps=tuple(ExpectedStep(s["index"], s.get("tier"), tuple(s.get("hits", ())), tuple(s.get("notHits", ())))
                    for s in raw.get("steps", ())),
    )


def _read_ir_file(located: Located, path: tuple[str | int, ...], base: Path, name: str,
                  problems: list[SourceProblem]) -> bytes | None:
    target = base / name
    try:
        if target.stat().st_size > _MAX_IR_FILE_BYTES:
            problems.append(located.problem(path, f"ir file `{name}` exceeds {_MAX_IR_FILE_BYTES} bytes"))
            return None
        return target.read_bytes()
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        problems.append(located.problem(path, f"cannot read ir file `{name}`: {reason}"))
        return None


def parse_policy_test(text: str | bytes, file: str, *, base_dir: Path | None = None,
                      max_bytes: int = DEFAULT_MAX_PACK_BYTES) -> PolicyTestFile:
    """Load a policy test from its text; `packs` and `irFile` resolve against `base_dir`
    (default: the directory of `file`). Raise `PolicyTestLoadError` listing every problem."""
    try:
        located = load_yaml_strict(text, file, max_bytes=max_bytes)
    except PackLoadError as exc:
        raise PolicyTestLoadError(exc.problems) from None
    if not isinstance(located.data, dict):
        raise PolicyTestLoadError([SourceProblem(file, 1, 1, "a policy test is a yaml mapping")])
    problems = schema_problems(located, _validator(), _schema_message)
    if problems:
        raise PolicyTestLoadError(problems)
    data = located.data
    base = base_dir if base_dir is not None else Path(file).parent
    packs: list[Path] = []
    for i, name in enumerate(data["packs"]):
        target = Path(os.path.normpath(base / name))  # `../x` named as the file it reaches
        if not target.exists():
            problems.append(located.problem(("packs", i), f"rule pack `{name}` does not exist"))
        packs.append(target)
    defaults = data.get("defaults", {})
    seen: dict[str, int] = {}
    cases: list[PolicyTestCase] = []
    for i, raw in enumerate(data["cases"]):
        line = located.position(("cases", i)).line
        name = raw["name"]
        if name in seen:
            problems.append(located.problem(("cases", i, "name"),
                                            f"duplicate case name `{name}` (first used at line {seen[name]})"))
            continue
        seen[name] = line
        ir: Mapping[str, Any] | bytes | None
        if "irFile" in raw:
            ir = _read_ir_file(located, ("cases", i, "irFile"), base, raw["irFile"], problems)
        else:
            ir = _merge_defaults(raw["ir"], defaults)
        if ir is None:
            continue
        cases.append(PolicyTestCase(name=name, ir=ir, expect=_expectation(raw["expect"]), line=line,
                                    description=raw.get("description", ""), ir_file=raw.get("irFile")))
    if problems:
        raise PolicyTestLoadError(problems)
    meta = data["metadata"]
    return PolicyTestFile(name=meta["name"], file=file, packs=tuple(packs), cases=tuple(cases),
                          description=meta.get("description", ""))


def load_policy_test(path: str | Path) -> PolicyTestFile:
    """Read and load the policy test file at `path`."""
    name = str(path)
    try:
        size = Path(path).stat().st_size
        if size > DEFAULT_MAX_PACK_BYTES:
            raise PolicyTestLoadError([SourceProblem(
                name, 1, 1, f"file of {size} bytes exceeds the limit of {DEFAULT_MAX_PACK_BYTES}")])
        data = Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        raise PolicyTestLoadError([SourceProblem(name, 1, 1, f"cannot read policy test: {reason}")]) from None
    return parse_policy_test(data, name)


def find_policy_tests(paths: list[str | Path]) -> list[Path]:
    """The policy test files named by `paths`: files as given, directories searched recursively
    for `*.irgov-test.yaml`. A path that does not exist is a load error."""
    found: list[Path] = []
    missing: list[SourceProblem] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob(f"*{TEST_SUFFIX}") if p.is_file()))
        elif path.exists():
            found.append(path)
        else:
            missing.append(SourceProblem(str(path), 1, 1, "no such file or directory"))
    if missing:
        raise PolicyTestLoadError(missing)
    return found
