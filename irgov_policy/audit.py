"""Diff audit: is the executable DAG exactly the IR, step by step, by hash?

Every node is judged on its own and every problem is reported; nothing is skipped, nothing
overwrites anything, and no malformed node can raise. Success only when every list is empty.
Each node's digest picks the algorithm the IR step is re-hashed with, within the allowed set,
so a DAG hashed with blake3 is audited with blake3 and a downgraded prefix is malformed.
"""

from __future__ import annotations

import hmac
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import DigestError, HashBackendError
from .events.bus import EventBus
from .events.envelope import Event, format_timestamp, new_event
from .events.types import EventType
from .hashing import (
    DEFAULT_ALGORITHM,
    DEFAULT_ALLOWED_ALGORITHMS,
    HashRegistry,
    dag_hash,
    ir_hash,
    step_hash,
    verify_digest,
)
from .model import IR

__all__ = ["DiffAuditResult", "HashMismatch", "MalformedNode", "audit", "audit_event"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HashMismatch:
    step_index: int
    step_id: str
    node_index: int
    ir_step_hash: str
    dag_node_hash: str


@dataclass(frozen=True)
class MalformedNode:
    node_index: int
    reason: str  # not_an_object | missing_id | non_string_id | empty_id | missing_hash | empty_hash | bad_digest
    detail: str


@dataclass(frozen=True)
class DiffAuditResult:
    tenant_id: str
    request_id: str | None
    ir_hash: str
    dag_hash: str
    step_count: int
    dag_node_count: int
    missing_ir_steps: list[str] = field(default_factory=list)
    extra_dag_nodes: list[str] = field(default_factory=list)
    hash_mismatches: list[HashMismatch] = field(default_factory=list)
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
            or self.duplicate_dag_node_ids
            or self.duplicate_ir_step_ids
            or self.malformed_nodes
        )

    def problems(self) -> list[str]:
        """One line per problem, in a stable order, for people."""
        lines = [f"ir step `{s}` has no dag node" for s in self.missing_ir_steps]
        lines += [f"dag node `{n}` matches no ir step" for n in self.extra_dag_nodes]
        lines += [
            f"step `{m.step_id}` (index {m.step_index}): dag node {m.node_index} has hash "
            f"`{m.dag_node_hash}`, ir step hash is `{m.ir_step_hash}`"
            for m in self.hash_mismatches
        ]
        lines += [f"dag node id `{d}` appears more than once" for d in self.duplicate_dag_node_ids]
        lines += [f"ir step id `{d}` appears more than once" for d in self.duplicate_ir_step_ids]
        lines += [f"dag node {m.node_index} is malformed: {m.detail}" for m in self.malformed_nodes]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "tenant_id": self.tenant_id,
            "request_id": self.request_id,
            "ir_hash": self.ir_hash,
            "dag_hash": self.dag_hash,
            "step_count": self.step_count,
            "dag_node_count": self.dag_node_count,
            "missing_ir_steps": list(self.missing_ir_steps),
            "extra_dag_nodes": list(self.extra_dag_nodes),
            "hash_mismatches": [asdict(m) for m in self.hash_mismatches],
            "duplicate_dag_node_ids": list(self.duplicate_dag_node_ids),
            "duplicate_ir_step_ids": list(self.duplicate_ir_step_ids),
            "malformed_nodes": [asdict(m) for m in self.malformed_nodes],
            "verified_at": format_timestamp(self.verified_at),
        }


def _judge_node(index: int, node: Any, allowed: frozenset[str],
                registry: HashRegistry | None) -> tuple[str, str] | MalformedNode:
    if not isinstance(node, Mapping):
        return MalformedNode(index, "not_an_object", f"node is a `{type(node).__name__}`, not an object")
    if "ir_step_id" not in node:
        return MalformedNode(index, "missing_id", "missing `ir_step_id`")
    node_id = node["ir_step_id"]
    if not isinstance(node_id, str):
        return MalformedNode(index, "non_string_id", f"`ir_step_id` is a `{type(node_id).__name__}`, not a string")
    if not node_id:
        return MalformedNode(index, "empty_id", "`ir_step_id` is empty")
    if "ir_step_hash" not in node:
        return MalformedNode(index, "missing_hash", f"node `{node_id}` has no `ir_step_hash`")
    digest = node["ir_step_hash"]
    if digest == "" or digest is None:
        return MalformedNode(index, "empty_hash", f"node `{node_id}` has an empty `ir_step_hash`")
    try:
        verify_digest(digest, allowed=allowed, registry=registry)
    except (DigestError, HashBackendError) as exc:
        return MalformedNode(index, "bad_digest", f"node `{node_id}`: {exc}")
    return node_id, str(digest)


def audit(
    ir: IR,
    dag_nodes: Sequence[Any],
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    allowed_algorithms: Iterable[str] = DEFAULT_ALLOWED_ALGORITHMS,
    registry: HashRegistry | None = None,
    bus: EventBus | None = None,
    now: datetime | None = None,
) -> DiffAuditResult:
    """Compare the DAG nodes with the IR's steps. Never raises on malformed nodes.

    `algorithm` hashes the IR and the DAG as a whole; each node's own digest prefix chooses the
    algorithm its step is re-hashed with, within `allowed_algorithms`."""
    allowed = frozenset(allowed_algorithms)
    malformed: list[MalformedNode] = []
    if isinstance(dag_nodes, list | tuple):
        nodes = list(dag_nodes)
    else:
        nodes = []
        malformed.append(MalformedNode(-1, "not_a_list", f"the dag is a `{type(dag_nodes).__name__}`, not a list of nodes"))

    step_ids = ir.step_ids()
    id_counts = Counter(step_ids)
    duplicate_step_ids = sorted(i for i, c in id_counts.items() if c > 1)

    well_formed: list[tuple[int, str, str]] = []
    for index, node in enumerate(nodes):
        judged = _judge_node(index, node, allowed, registry)
        if isinstance(judged, MalformedNode):
            malformed.append(judged)
        else:
            well_formed.append((index, *judged))

    node_counts = Counter(node_id for _, node_id, _ in well_formed)
    duplicate_node_ids = sorted(i for i, c in node_counts.items() if c > 1)

    nodes_by_id: dict[str, list[tuple[int, str]]] = {}
    for index, node_id, digest in well_formed:
        nodes_by_id.setdefault(node_id, []).append((index, digest))

    missing: list[str] = []
    mismatches: list[HashMismatch] = []
    for step_index, (step, sid) in enumerate(zip(ir.steps, step_ids, strict=True)):
        copies = nodes_by_id.get(sid)
        if not copies:
            missing.append(sid)
            continue
        expected_by_algorithm: dict[str, str] = {}
        # Every copy of a duplicated id is compared: a wrong copy fails wherever it is placed.
        for node_index, node_digest in copies:
            node_algorithm = node_digest.split(":", 1)[0]
            if node_algorithm not in expected_by_algorithm:
                expected_by_algorithm[node_algorithm] = step_hash(step, node_algorithm, registry=registry)
            expected = expected_by_algorithm[node_algorithm]
            if not hmac.compare_digest(expected, node_digest):
                mismatches.append(HashMismatch(step_index, sid, node_index, expected, node_digest))

    known_ids = set(step_ids)
    extra = [node_id for _, node_id, _ in well_formed if node_id not in known_ids]

    result = DiffAuditResult(
        tenant_id=ir.tenant_id,
        request_id=ir.request_id,
        ir_hash=ir_hash(ir, algorithm, registry=registry),
        dag_hash=dag_hash([(i, h) for _, i, h in well_formed], algorithm, registry=registry),
        step_count=len(ir.steps),
        dag_node_count=len(nodes),
        missing_ir_steps=missing,
        extra_dag_nodes=extra,
        hash_mismatches=mismatches,
        duplicate_dag_node_ids=duplicate_node_ids,
        duplicate_ir_step_ids=duplicate_step_ids,
        malformed_nodes=malformed,
        verified_at=now or datetime.now(UTC),
    )
    if bus is not None:
        bus.publish(audit_event(result))
    return result


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
        "verified_at": format_timestamp(result.verified_at),
    }
    if result.success:
        event_type = EventType.DAG_DIFF_OK
    else:
        event_type = EventType.DAG_DIFF_FAILED
        payload["mismatch_details"] = {
            "missing_ir_steps": list(result.missing_ir_steps),
            "extra_dag_nodes": list(result.extra_dag_nodes),
            "hash_mismatches": [
                {"step_index": m.step_index, "step_id": m.step_id, "node_index": m.node_index,
                 "ir_step_hash": m.ir_step_hash, "dag_node_hash": m.dag_node_hash}
                for m in result.hash_mismatches
            ],
            "duplicate_dag_node_ids": list(result.duplicate_dag_node_ids),
            "duplicate_ir_step_ids": list(result.duplicate_ir_step_ids),
            "malformed_nodes": [asdict(m) for m in result.malformed_nodes],
        }
    return new_event(event_type, payload, tenant_id=result.tenant_id, correlation_id=result.request_id,
                     now=result.verified_at)
