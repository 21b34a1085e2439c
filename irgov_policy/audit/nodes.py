"""Reading one DAG node: what it claims (id, hash), what it will run (its content), what it waits for.

A node is judged on its own and never raises: anything wrong with it is a `MalformedNode`.
Fields are of three kinds, and anything else is refused rather than ignored, because an
executor may act on a field the audit never looked at:
- the claim: `ir_step_id` and `ir_step_hash`;
- the executable content: the IR step's own fields (`action`, `provider`, `resource`, `params`,
  `idempotency_key`, `constraints`, `budget_cents`, `step_id`, `description`), read with the
  IR's rules and hashed like an IR step;
- known metadata, not hashed: `node_id`, `name`, `executor`, `depends_on` (ids of the nodes it
  waits for), and the computed `risk_tier` / `requires_approval`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import DigestError, HashBackendError, IRInputError
from ..hashing import HashRegistry, step_hash, verify_digest
from ..model import COMPUTED_STEP_FIELDS, Step, parse_step
from .result import MalformedNode

__all__ = ["CONTENT_FIELDS", "METADATA_FIELDS", "JudgedNode", "dag_nodes_for", "judge_node"]

CLAIM_FIELDS = frozenset({"ir_step_id", "ir_step_hash"})
CONTENT_FIELDS = frozenset({"action", "provider", "resource", "params", "idempotency_key", "constraints",
                            "budget_cents", "step_id", "description"})
METADATA_FIELDS = frozenset({"node_id", "name", "executor", "depends_on"}) | COMPUTED_STEP_FIELDS
_KNOWN = CLAIM_FIELDS | CONTENT_FIELDS | METADATA_FIELDS


@dataclass(frozen=True)
class JudgedNode:
    index: int
    node_id: str
    digest: str
    content: Step | None
    depends_on: tuple[str, ...] | None

    @property
    def algorithm(self) -> str:
        return self.digest.split(":", 1)[0]


def _short(value: object, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def judge_node(index: int, node: Any, allowed: frozenset[str], registry: HashRegistry | None, *,
               require_content: bool) -> JudgedNode | MalformedNode:
    if not isinstance(node, Mapping):
        return MalformedNode(index, "not_an_object", f"node is a `{type(node).__name__}`, not an object")
    if "ir_step_id" not in node:
        return MalformedNode(index, "missing_id", "missing `ir_step_id`")
    node_id = node["ir_step_id"]
    if not isinstance(node_id, str):
        return MalformedNode(index, "non_string_id", f"`ir_step_id` is a `{type(node_id).__name__}`, not a string")
    if not node_id:
        return MalformedNode(index, "empty_id", "`ir_step_id` is empty")
    unknown = sorted(str(k) for k in node if k not in _KNOWN)
    if unknown:
        return MalformedNode(index, "unknown_field", f"node `{_short(node_id)}` has unknown field "
                             + ", ".join(f"`{_short(k)}`" for k in unknown[:5]))
    if "ir_step_hash" not in node:
        return MalformedNode(index, "missing_hash", f"node `{node_id}` has no `ir_step_hash`")
    digest = node["ir_step_hash"]
    if digest == "" or digest is None:
        return MalformedNode(index, "empty_hash", f"node `{node_id}` has an empty `ir_step_hash`")
    try:
        verify_digest(digest, allowed=allowed, registry=registry)
    except (DigestError, HashBackendError) as exc:
        return MalformedNode(index, "bad_digest", f"node `{node_id}`: {exc}")
    depends_on = _depends_on(node)
    if isinstance(depends_on, str):
        return MalformedNode(index, "bad_depends_on", f"node `{node_id}`: {depends_on}")
    content = _content(node)
    if isinstance(content, str):
        return MalformedNode(index, "bad_content", f"node `{node_id}`: {content}")
    if content is None and require_content:
        return MalformedNode(index, "missing_content",
                             f"node `{node_id}` carries only a claimed hash, not what it will run")
    return JudgedNode(index, node_id, str(digest), content, depends_on)


def _depends_on(node: Mapping[str, Any]) -> tuple[str, ...] | None | str:
    if "depends_on" not in node or node["depends_on"] is None:
        return None
    value = node["depends_on"]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        return "`depends_on` must be a list of node ids"
    return tuple(value)


def _content(node: Mapping[str, Any]) -> Step | None | str:
    """The step the node will run, or None when it carries no content, or why it is unreadable."""
    sent = {k: v for k, v in node.items() if k in CONTENT_FIELDS or k in COMPUTED_STEP_FIELDS}
    if not any(k in CONTENT_FIELDS for k in sent):
        return None
    try:
        return parse_step(sent)
    except IRInputError as exc:
        first = exc.problems[0]
        where = f" at `{first.pointer}`" if first.pointer else ""
        return f"its content is not a valid step{where}: {first.message}"


def dag_nodes_for(ir_steps: Sequence[Step], step_ids: Sequence[str], algorithm: str = "sha256", *,
                  registry: HashRegistry | None = None) -> list[dict[str, Any]]:
    """The DAG an executor that runs the IR as planned would present: one node per step, in IR
    order, carrying the step's id, its hash and its content."""
    return [{"ir_step_id": sid, "ir_step_hash": step_hash(step, algorithm, registry=registry),
             **_thaw_content(step)}
            for step, sid in zip(ir_steps, step_ids, strict=True)]


def _thaw_content(step: Step) -> dict[str, Any]:
    return copy.deepcopy(step.to_hashable())
