"""What a diff audit found, for people (`problems`), for APIs (`to_dict`) and as an event.

The `ir.dag_diff_failed` payload keeps the event contract's shape: `missing_ir_steps` holds IR
step indices and `extra_dag_nodes` DAG node indices (integers); the ids ride beside them in
`missing_ir_step_ids` and `extra_dag_node_ids`, and every finer finding in fields of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..events.envelope import Event, format_payload_timestamp, format_timestamp, new_event
from ..events.types import EventType

__all__ = [
    "ContentMismatch",
    "DiffAuditResult",
    "ExtraNode",
    "HashMismatch",
    "MalformedNode",
    "MissingStep",
    "OrderViolation",
    "audit_event",
]


@dataclass(frozen=True)
class MissingStep:
    step_index: int
    step_id: str


@dataclass(frozen=True)
class ExtraNode:
    node_index: int
    node_id: str


@dataclass(frozen=True)
class HashMismatch:
    """The hash a node claims is not the IR step's hash."""

    step_index: int
    step_id: str
    node_index: int
    ir_step_hash: str
    dag_node_hash: str


@dataclass(frozen=True)
class ContentMismatch:
    """What a node will run does not hash to what it claims (or to its IR step)."""

    step_index: int
    step_id: str
    node_index: int
    claimed_hash: str
    content_hash: str
    ir_step_hash: str
    differing_fields: tuple[str, ...]


@dataclass(frozen=True)
class OrderViolation:
    """A node may run before a node whose IR step precedes its own."""

    step_index: int
    step_id: str
    node_index: int
    must_follow_step_index: int
    must_follow_step_id: str


@dataclass(frozen=True)
class MalformedNode:
    node_index: int
    # not_an_object | not_a_list | missing_id | non_string_id | empty_id | missing_hash | empty_hash |
    # bad_digest | unknown_field | bad_content | missing_content | bad_depends_on | dependency_cycle
    reason: str
    detail: str


@dataclass(frozen=True)
class DiffAuditResult:
    tenant_id: str
    request_id: str | None
    ir_hash: str
    dag_hash: str
    step_count: int
    dag_node_count: int
    missing_ir_steps: list[MissingStep] = field(default_factory=list)
    extra_dag_nodes: list[ExtraNode] = field(default_factory=list)
    hash_mismatches: list[HashMismatch] = field(default_factory=list)
    content_mismatches: list[ContentMismatch] = field(default_factory=list)
    order_violations: list[OrderViolation] = field(default_factory=list)
    duplicate_dag_node_ids: list[str] = field(default_factory=list)
    duplicate_ir_step_ids: list[str] = field(default_factory=list)
    malformed_nodes: list[MalformedNode] = field(default_factory=list)
    verified_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def success(self) -> bool:
        return not (
            self.missing_ir_steps
            or self.extra_dag_nodes
            or self.hash_mismatches
            or self.content_mismatches
            or self.order_violations
            or self.duplicate_dag_node_ids
            or self.duplicate_ir_step_ids
            or self.malformed_nodes
        )

    def problems(self) -> list[str]:
        """One line per problem, in a stable order, for people."""
        lines = [f"ir step `{m.step_id}` (index {m.step_index}) has no dag node" for m in self.missing_ir_steps]
        lines += [f"dag node {e.node_index} (`{e.node_id}`) matches no ir step" for e in self.extra_dag_nodes]
        lines += [
            f"step `{m.step_id}` (index {m.step_index}): dag node {m.node_index} has hash "
            f"`{m.dag_node_hash}`, ir step hash is `{m.ir_step_hash}`"
            for m in self.hash_mismatches
        ]
        lines += [
            f"step `{c.step_id}` (index {c.step_index}): dag node {c.node_index} will run content hashing to "
            f"`{c.content_hash}`, not its claimed `{c.claimed_hash}`"
            + (" (differs in " + ", ".join(f"`{f}`" for f in c.differing_fields) + ")" if c.differing_fields else "")
            for c in self.content_mismatches
        ]
        lines += [
            f"step `{o.step_id}` (index {o.step_index}): dag node {o.node_index} may run before step "
            f"`{o.must_follow_step_id}` (index {o.must_follow_step_index}), which precedes it in the ir"
            for o in self.order_violations
        ]
        lines += [f"dag node id `{d}` appears more than once" for d in self.duplicate_dag_node_ids]
        lines += [f"ir step id `{d}` appears more than once" for d in self.duplicate_ir_step_ids]
        lines += [f"dag node {m.node_index} is malformed: {m.detail}" for m in self.malformed_nodes]
        return lines

    def mismatch_details(self) -> dict[str, Any]:
        """The contract's `mismatch_details`, with the finer findings beside its three lists."""
        return {
            "missing_ir_steps": [m.step_index for m in self.missing_ir_steps],
            "extra_dag_nodes": [e.node_index for e in self.extra_dag_nodes],
            "hash_mismatches": [asdict(m) for m in self.hash_mismatches],
            "missing_ir_step_ids": [m.step_id for m in self.missing_ir_steps],
            "extra_dag_node_ids": [e.node_id for e in self.extra_dag_nodes],
            "content_mismatches": [{**asdict(c), "differing_fields": list(c.differing_fields)}
                                   for c in self.content_mismatches],
            "order_violations": [asdict(o) for o in self.order_violations],
            "duplicate_dag_node_ids": list(self.duplicate_dag_node_ids),
            "duplicate_ir_step_ids": list(self.duplicate_ir_step_ids),
            "malformed_nodes": [asdict(m) for m in self.malformed_nodes],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "tenant_id": self.tenant_id,
            "request_id": self.request_id,
            "ir_hash": self.ir_hash,
            "dag_hash": self.dag_hash,
            "step_count": self.step_count,
            "dag_node_count": self.dag_node_count,
            **self.mismatch_details(),
            "verified_at": format_timestamp(self.verified_at),
        }


def audit_event(result: DiffAuditResult) -> Event:
    """`ir.dag_diff_ok` or `ir.dag_diff_failed` with the contract's payload."""
    payload: dict[str, Any] = {
        "tenant_id": result.tenant_id,
        "request_id": result.request_id,
        "ir_hash": result.ir_hash,
        "dag_hash": result.dag_hash,
        "step_count": result.step_count,
        "dag_node_count": result.dag_node_count,
        "all_hashes_match": result.success,
        "verified_at": format_payload_timestamp(result.verified_at),
    }
    if result.success:
        event_type = EventType.DAG_DIFF_OK
    else:
        event_type = EventType.DAG_DIFF_FAILED
        payload["mismatch_details"] = result.mismatch_details()
    return new_event(event_type, payload, tenant_id=result.tenant_id, correlation_id=result.request_id,
                     now=result.verified_at)
