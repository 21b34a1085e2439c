"""Diff audit: is the executable DAG exactly the IR, step by step, and in order?

The audit checks what a node will run, not only what it claims. Every node is judged on its own
(`nodes.py`): its claimed `ir_step_hash` is compared with the IR step's hash, and when the node
carries the step's content (action, provider, resource, params, ...) that content is re-hashed
and must give the same hash, so a node that claims the right hash while running something else
fails with a content mismatch. `require_content` refuses nodes that carry only a claim. Then
the DAG's order is checked against the IR's (`order.py`). Every problem is reported, nothing is
skipped, no malformed node can raise; success only when every list is empty.

Each node's digest picks the algorithm its IR step is re-hashed with, within the allowed set,
so a DAG hashed with blake3 is audited with blake3 and a downgraded prefix is malformed.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..events.bus import EventBus
from ..hashing import (
    DEFAULT_ALGORITHM,
    DEFAULT_ALLOWED_ALGORITHMS,
    HashRegistry,
    dag_hash,
    ir_hash,
    step_hash,
)
from ..model import IR, Step
from .nodes import CONTENT_FIELDS, METADATA_FIELDS, JudgedNode, dag_nodes_for, judge_node
from .order import check_order, step_groups
from .result import (
    ContentMismatch,
    DiffAuditResult,
    ExtraNode,
    HashMismatch,
    MalformedNode,
    MissingStep,
    OrderViolation,
    audit_event,
)

__all__ = [
    "CONTENT_FIELDS",
    "METADATA_FIELDS",
    "ContentMismatch",
    "DiffAuditResult",
    "ExtraNode",
    "HashMismatch",
    "MalformedNode",
    "MissingStep",
    "OrderViolation",
    "audit",
    "audit_event",
    "dag_nodes",
    "step_groups",
]


def dag_nodes(ir: IR, algorithm: str = DEFAULT_ALGORITHM, *, registry: HashRegistry | None = None) -> list[dict[str, Any]]:
    """The DAG of an executor that runs `ir` exactly as planned: one node per step, in order, each
    with the step's id, hash and content (what `authorize_execution` requires by default)."""
    return dag_nodes_for(ir.steps, ir.step_ids(), algorithm, registry=registry)


def _differing_fields(content: Step, step: Step) -> tuple[str, ...]:
    ran, planned = content.to_hashable(), step.to_hashable()
    return tuple(sorted(k for k in set(ran) | set(planned) if ran.get(k) != planned.get(k)))


def audit(
    ir: IR,
    dag_nodes: Sequence[Any],
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    allowed_algorithms: Iterable[str] = DEFAULT_ALLOWED_ALGORITHMS,
    registry: HashRegistry | None = None,
    require_content: bool = False,
    bus: EventBus | None = None,
    now: datetime | None = None,
    ir_digest: str | None = None,
) -> DiffAuditResult:
    """Compare the DAG nodes with the IR's steps. Never raises on malformed nodes.

    `algorithm` hashes the IR and the DAG as a whole; each node's own digest prefix chooses the
    algorithm its step is re-hashed with, within `allowed_algorithms`. `ir_digest` is the IR's
    hash under `algorithm` when the caller already holds it (the kernel's own decision), so the
    IR is not hashed twice."""
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

    well_formed: list[JudgedNode] = []
    for index, node in enumerate(nodes):
        judged = judge_node(index, node, allowed, registry, require_content=require_content)
        if isinstance(judged, MalformedNode):
            malformed.append(judged)
        else:
            well_formed.append(judged)

    node_counts = Counter(n.node_id for n in well_formed)
    duplicate_node_ids = sorted(i for i, c in node_counts.items() if c > 1)
    nodes_by_id: dict[str, list[JudgedNode]] = {}
    for judged in well_formed:
        nodes_by_id.setdefault(judged.node_id, []).append(judged)

    missing: list[MissingStep] = []
    mismatches: list[HashMismatch] = []
    content_mismatches: list[ContentMismatch] = []
    placed: dict[int, JudgedNode] = {}
    for step_index, (step, sid) in enumerate(zip(ir.steps, step_ids, strict=True)):
        copies = nodes_by_id.get(sid)
        if not copies:
            missing.append(MissingStep(step_index, sid))
            continue
        if len(copies) == 1 and id_counts[sid] == 1:
            placed[step_index] = copies[0]
        expected_by_algorithm: dict[str, str] = {}
        # Every copy of a duplicated id is compared: a wrong copy fails wherever it is placed.
        for node in copies:
            if node.algorithm not in expected_by_algorithm:
                expected_by_algorithm[node.algorithm] = step_hash(step, node.algorithm, registry=registry)
            expected = expected_by_algorithm[node.algorithm]
            if not hmac.compare_digest(expected, node.digest):
                mismatches.append(HashMismatch(step_index, sid, node.index, expected, node.digest))
            if node.content is not None:
                ran = step_hash(node.content, node.algorithm, registry=registry)
                if not (hmac.compare_digest(ran, node.digest) and hmac.compare_digest(ran, expected)):
                    content_mismatches.append(ContentMismatch(step_index, sid, node.index, node.digest, ran,
                                                              expected, _differing_fields(node.content, step)))

    known_ids = set(step_ids)
    extra = [ExtraNode(n.index, n.node_id) for n in well_formed if n.node_id not in known_ids]
    order_violations: list[OrderViolation] = []
    if not malformed:
        order_violations, order_malformed = check_order(ir.steps, step_ids, placed, well_formed)
        malformed.extend(order_malformed)

    result = DiffAuditResult(
        tenant_id=ir.tenant_id,
        request_id=ir.request_id,
        ir_hash=ir_digest if ir_digest is not None else ir_hash(ir, algorithm, registry=registry),
        dag_hash=dag_hash([(n.node_id, n.digest) for n in well_formed], algorithm, registry=registry),
        step_count=len(ir.steps),
        dag_node_count=len(nodes),
        missing_ir_steps=missing,
        extra_dag_nodes=extra,
        hash_mismatches=mismatches,
        content_mismatches=content_mismatches,
        order_violations=order_violations,
        duplicate_dag_node_ids=duplicate_node_ids,
        duplicate_ir_step_ids=duplicate_step_ids,
        malformed_nodes=malformed,
        verified_at=now or datetime.now(UTC),
    )
    if bus is not None:
        bus.publish(audit_event(result))
    return result
