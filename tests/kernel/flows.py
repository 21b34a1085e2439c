"""IR documents and DAG builders shared by the kernel and HTTP tests."""

from __future__ import annotations

import copy
from typing import Any

from irgov_policy.audit import dag_nodes
from irgov_policy.model import parse_ir

ESCALATE_IR: dict[str, Any] = {
    "tenant_id": "t1",
    "request_id": "req-escalate",
    "steps": [{"action": "dns.update_records", "provider": "dns.hetzner", "resource": "zone:example.com",
               "params": {"records": [{"type": "A", "name": "www", "value": "203.0.113.7"}]},
               "idempotency_key": "k-esc-1"}],
}
PASS_IR: dict[str, Any] = {
    "tenant_id": "t1",
    "request_id": "req-pass",
    "steps": [{"action": "course.create", "provider": "course_factory.v1", "resource": "course:intro",
               "idempotency_key": "k-pass-1"}],
}
REJECT_IR: dict[str, Any] = {
    "tenant_id": "t1",
    "request_id": "req-reject",
    "steps": [{"action": "custom.delete_everything", "provider": "dns.hetzner", "resource": "zone:example.com",
               "idempotency_key": "k-rej-1"}],
}


def ir(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out.update(changes)
    return out


def dag_for(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The DAG an honest executor presents: one node per step, with its hash and its content."""
    return dag_nodes(parse_ir(doc))
