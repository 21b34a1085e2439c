"""The strict input model: untrusted IR and DAG JSON in, frozen typed objects out.

Two rules shape this module:
- nothing is defaulted to a fresh value (no generated request id or timestamp), so the same
  input always hashes the same;
- fields a client may send but the validator computes (`risk_tier`, `requires_approval`)
  are accepted and dropped here, so they can never reach a hash.

Vocabularies (which actions and providers exist) are policy, declared by rule packs; an
unknown action is a policy decision, not a parse error. Likewise a missing idempotency key or
a non-integer budget parse, so that the policy can answer with its own violation code.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from .errors import InputProblem, IRInputError
from .producer import (
    BLANK_REFUSED_IR_FIELDS,
    BLANK_REFUSED_STEP_FIELDS,
    OPTIONAL_STEP_FIELDS,
    canonical_created_at,
    drop_nulls,
)
from .strict_json import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    MAX_SAFE_INTEGER,
    json_pointer,
    loads_strict,
)
from .text_rules import TOKEN_PREFIX, is_blank, token_pointers

__all__ = [
    "COMPUTED_STEP_FIELDS",
    "DEFAULT_MAX_STEPS",
    "IR",
    "InputLimits",
    "Step",
    "ir_schema",
    "load_dag_nodes",
    "load_ir",
    "parse_dag_nodes",
    "parse_ir",
    "parse_step",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_STEPS = 10_000
COMPUTED_STEP_FIELDS = frozenset({"risk_tier", "requires_approval"})


@dataclass(frozen=True)
class InputLimits:
    """Bounds applied to untrusted documents before and while they are parsed."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH
    max_steps: int = DEFAULT_MAX_STEPS
    strict_timestamps: bool = False
    """refuse a `created_at` without offset instead of reading it as UTC"""


@dataclass(frozen=True)
class Step:
    """One step of an IR. `budget_cents` is kept as sent: the policy judges its type."""

    action: str
    provider: str
    resource: str
    params: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    constraints: Mapping[str, Any] = field(default_factory=dict)
    budget_cents: Any = None
    step_id: str | None = None
    description: str | None = None
    # Which optional fields the client sent, so hashing reproduces the input's shape.
    present: frozenset[str] = frozenset()

    def to_hashable(self) -> dict[str, Any]:
        """The step as hashed: every sent field except computed ones; params/constraints always.

        Shares the step's nested values (no copy, hashing is hot): treat the result as read-only."""
        out: dict[str, Any] = {
            "action": self.action,
            "provider": self.provider,
            "resource": self.resource,
            "params": self.params,
            "constraints": self.constraints,
        }
        for name in ("idempotency_key", "budget_cents", "step_id", "description"):
            if name in self.present:
                out[name] = getattr(self, name)
        return out


@dataclass(frozen=True)
class IR:
    """A validated plan for one tenant."""

    tenant_id: str
    steps: tuple[Step, ...]
    request_id: str | None = None
    created_at: str | None = None
    intent_summary: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # How the input was read (e.g. a naive `created_at` taken as UTC): explained, never hashed.
    notes: tuple[str, ...] = field(default=(), compare=False)

    def step_ids(self) -> list[str]:
        """Each step's id: its `step_id`, else its index as a string."""
        return [s.step_id if s.step_id is not None else str(i) for i, s in enumerate(self.steps)]

    def to_hashable(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tenant_id": self.tenant_id,
            "steps": [s.to_hashable() for s in self.steps],
        }
        if self.request_id is not None:
            out["request_id"] = self.request_id
        if self.created_at is not None:
            out["created_at"] = self.created_at
        if self.intent_summary is not None:
            out["intent_summary"] = self.intent_summary
        if self.labels:
            out["labels"] = dict(self.labels)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready deep copy of the IR as parsed (the hashable form), safe to modify."""
        copied: dict[str, Any] = _thaw(self.to_hashable())
        return copied


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


@cache
def ir_schema() -> dict[str, Any]:
    """The shipped JSON Schema of the IR (draft 2020-12)."""
    text = resources.files("irgov_policy").joinpath("schemas/ir.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _ir_validator() -> jsonschema.protocols.Validator:
    """The explaining validator: slow, but it names each problem with its JSON pointer."""
    cls = jsonschema.validators.validator_for(ir_schema())
    validator: jsonschema.protocols.Validator = cls(ir_schema())
    return validator


@cache
def _compiled_ir_validator() -> Callable[[Any], bool] | None:
    """The hot-path validator: the schema compiled once by `jsonschema-rs` (Rust), about a hundred
    times faster than `jsonschema`; None where that package is not installed. It only answers
    valid or not: a refused IR is explained by `_ir_validator`, so messages do not depend on it."""
    try:
        import jsonschema_rs
    except ImportError:  # pragma: no cover - a platform without its wheels
        logger.info("jsonschema-rs is not installed: validating IRs with jsonschema")
        return None
    is_valid: Callable[[Any], bool] = jsonschema_rs.validator_for(ir_schema()).is_valid
    return is_valid


def _schema_valid(data: Any) -> bool | None:
    """The compiled validator's verdict, or None when it cannot judge `data` (no compiled
    validator, or a value it cannot convert, such as a mapping that is not a dict)."""
    is_valid = _compiled_ir_validator()
    if is_valid is None:
        return None
    try:
        return is_valid(data)
    except Exception:  # a value jsonschema-rs cannot convert: let jsonschema judge it
        return None


@cache
def _step_validator() -> jsonschema.protocols.Validator:
    schema = {"$defs": ir_schema()["$defs"], "$ref": "#/$defs/step"}
    cls = jsonschema.validators.validator_for(ir_schema())
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def _python_value_problems(node: Any, path: list[str | int], depth: int, limits: InputLimits,
                           out: list[InputProblem]) -> None:
    """Checks applied to already-parsed Python values, which did not pass through loads_strict."""
    if depth > limits.max_depth:
        out.append(InputProblem(json_pointer(path), f"nesting deeper than {limits.max_depth} levels"))
        return
    if isinstance(node, str):
        if not node.isascii() and _has_lone_surrogate(node):
            out.append(InputProblem(json_pointer(path), "string contains a lone utf-16 surrogate"))
        return
    if isinstance(node, bool) or node is None:
        return
    if isinstance(node, int):
        if abs(node) > MAX_SAFE_INTEGER:
            out.append(InputProblem(json_pointer(path),
                                    f"integer `{node}` is outside the interoperable range of +/-(2^53 - 1)"))
    elif isinstance(node, float):
        if not math.isfinite(node):
            out.append(InputProblem(json_pointer(path), f"`{node}` is not a finite number"))
    elif isinstance(node, Mapping):
        for k, v in node.items():
            if not isinstance(k, str):
                out.append(InputProblem(json_pointer(path), f"object key `{k!r}` is not a string"))
                continue
            if not k.isascii() and _has_lone_surrogate(k):
                out.append(InputProblem(json_pointer(path), "object key contains a lone utf-16 surrogate"))
                continue
            _python_value_problems(v, [*path, k], depth + 1, limits, out)
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            _python_value_problems(v, [*path, i], depth + 1, limits, out)
    else:
        out.append(InputProblem(json_pointer(path), f"value of type `{type(node).__name__}` is not json"))


def _blank_problems(data: Mapping[str, Any]) -> list[InputProblem]:
    """Whitespace-only names name nothing: a blank tenant would bind approvals to no one."""
    problems = [InputProblem(f"/{k}", "must not be blank") for k in BLANK_REFUSED_IR_FIELDS if is_blank(data[k])]
    for index, step in enumerate(data["steps"]):
        problems += [InputProblem(f"/steps/{index}/{k}", "must not be blank")
                     for k in BLANK_REFUSED_STEP_FIELDS if is_blank(step[k])]
    return problems


def _has_lone_surrogate(text: str) -> bool:
    """True for a string no UTF-8 reader can take (nor hash): it holds a lone UTF-16 surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_ir(data: Any, *, limits: InputLimits | None = None) -> IR:
    """Validate an already-decoded IR (a dict) and return the frozen `IR`.

    Raises `IRInputError` naming the JSON pointer of every problem."""
    return _parse_ir(data, limits or InputLimits(), decoded_strictly=False)


def _parse_ir(data: Any, limits: InputLimits, *, decoded_strictly: bool) -> IR:
    """`parse_ir`; with `decoded_strictly` (the value comes from `loads_strict` with the same
    limits) the walk over every value is skipped: the strict reader already refused what it
    looks for (deep nesting, unsafe integers, non-finite numbers, non-JSON values)."""
    problems: list[InputProblem] = []
    if not decoded_strictly:
        _python_value_problems(data, [], 0, limits, problems)
        if problems:
            raise IRInputError(problems)
    data = drop_nulls(data)
    if isinstance(data, Mapping) and isinstance(data.get("steps"), list) and len(data["steps"]) > limits.max_steps:
        raise IRInputError([InputProblem("/steps", f"{len(data['steps'])} steps exceed the limit of {limits.max_steps}")])
    verdict = _schema_valid(data)
    if verdict is not True:
        for error in sorted(_ir_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
            problems.append(InputProblem(json_pointer(list(error.absolute_path)), _schema_message(error)))
        if verdict is False and not problems:  # the validators disagree: fail closed
            problems.append(InputProblem("", "the ir does not match its schema"))
    if not problems and TOKEN_PREFIX in repr(data):  # repr is a C-speed screen; the walk locates
        problems += [InputProblem(json_pointer(list(p)), "holds an approval token: a token never belongs in an ir")
                     for p in token_pointers(data)]
    if problems:
        raise IRInputError(problems)
    assert isinstance(data, Mapping)
    problems = _blank_problems(data)
    created_at: str | None = None
    notes: tuple[str, ...] = ()
    if "created_at" in data:
        read = canonical_created_at(data["created_at"], strict=limits.strict_timestamps)
        if isinstance(read, str):
            problems.append(InputProblem("/created_at", read))
        else:
            created_at, note = read
            notes = (note,) if note else ()
    if problems:
        raise IRInputError(problems)
    # Values decoded here belong to no one else: only a caller's mappings need copying.
    steps = tuple(_build_step(s, copy=not decoded_strictly) for s in data["steps"])
    return IR(
        tenant_id=data["tenant_id"],
        steps=steps,
        request_id=data.get("request_id"),
        created_at=created_at,
        intent_summary=data.get("intent_summary"),
        labels=dict(data.get("labels", {})),
        notes=notes,
    )


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return "unknown field " + ", ".join(f"`{e}`" for e in extra)
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return "expected " + " or ".join(f"`{t}`" for t in expected) + f", got `{_json_type(error.instance)}`"
    message = str(error.message).replace("'", "`")
    if error.validator == "required":
        return message.replace("is a required property", "is required")
    if error.validator == "not":
        # The only `not` of the schema: `{"pattern": <a control character>}`, written without
        # anchors because Python's `$` also matches before a final newline.
        return "contains a control character"
    return message


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages about what was sent."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "integer" if isinstance(value, int) else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def _build_step(raw: Mapping[str, Any], *, copy: bool = True) -> Step:
    present = frozenset(k for k in raw if k not in COMPUTED_STEP_FIELDS)
    params, constraints = raw.get("params", {}), raw.get("constraints", {})
    return Step(
        action=raw["action"],
        provider=raw["provider"],
        resource=raw["resource"],
        params=_thaw(params) if copy else params,
        idempotency_key=raw.get("idempotency_key"),
        constraints=_thaw(constraints) if copy else constraints,
        budget_cents=raw.get("budget_cents"),
        step_id=raw.get("step_id"),
        description=raw.get("description"),
        present=present,
    )


def parse_step(data: Any, *, limits: InputLimits | None = None) -> Step:
    """Validate one step as an IR step (the same rules as inside an IR) and return it.

    The diff audit uses it to rebuild what a DAG node will run. Raises `IRInputError` naming the
    JSON pointer, relative to the step, of every problem."""
    limits = limits or InputLimits()
    problems: list[InputProblem] = []
    _python_value_problems(data, [], 0, limits, problems)
    if isinstance(data, Mapping):
        data = {k: v for k, v in data.items() if not (v is None and k in OPTIONAL_STEP_FIELDS)}
    if not problems:
        for error in sorted(_step_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
            problems.append(InputProblem(json_pointer(list(error.absolute_path)), _schema_message(error)))
    if not problems:
        problems = [InputProblem(f"/{k}", "must not be blank") for k in BLANK_REFUSED_STEP_FIELDS if is_blank(data[k])]
    if problems:
        raise IRInputError(problems)
    return _build_step(data)


def load_ir(data: str | bytes, *, limits: InputLimits | None = None) -> IR:
    """Parse untrusted JSON text strictly, then validate it as an IR."""
    limits = limits or InputLimits()
    decoded = loads_strict(data, max_bytes=limits.max_bytes, max_depth=limits.max_depth)
    return _parse_ir(decoded, limits, decoded_strictly=True)


def parse_dag_nodes(data: Any) -> list[Any]:
    """Return the node list of a DAG document (a list, or an object with `nodes`).

    Nodes themselves are not validated here: the diff audit reports malformed nodes one by one
    instead of refusing the whole DAG."""
    if isinstance(data, list):
        return list(data)
    if isinstance(data, Mapping) and isinstance(data.get("nodes"), list):
        return list(data["nodes"])
    raise IRInputError([InputProblem("", "a dag is a list of nodes or an object with a `nodes` list")])


def load_dag_nodes(data: str | bytes, *, limits: InputLimits | None = None) -> list[Any]:
    """Parse untrusted DAG JSON strictly and return its node list."""
    limits = limits or InputLimits()
    return parse_dag_nodes(loads_strict(data, max_bytes=limits.max_bytes, max_depth=limits.max_depth))
