"""Small builders for IR documents used across the core tests."""

from __future__ import annotations

import copy
from typing import Any


def step(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "action": "dns.update_records",
        "provider": "dns.hetzner",
        "resource": "zone/example.com",
        "params": {"records": [{"type": "A", "name": "www", "value": "203.0.113.7"}]},
        "idempotency_key": "key-1",
    }
    base.update(overrides)
    return base


def ir_doc(*steps: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "tenant_id": "tenant_123",
        "request_id": "req_1",
        "created_at": "2026-11-27T10:00:00Z",
        "steps": [copy.deepcopy(s) for s in (steps or (step(),))],
    }
    doc.update(overrides)
    return doc
