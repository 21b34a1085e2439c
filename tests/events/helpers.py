"""Builders shared by the event tests: the seed's example payload of every event type, a real
local HTTP server that records webhook posts, and sinks that fail on purpose."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from irgov_policy.events import Event, EventType, new_event

IR_HASH = "sha256:" + "ab" * 32
OTHER_HASH = "sha256:" + "cd" * 32
WHEN = "2026-11-27T10:30:00Z"

SEED_PAYLOADS: dict[str, dict[str, Any]] = {
    EventType.APPROVAL_CREATED: {
        "approval_id": "appr_a1b2c3d4", "tenant_id": "tenant_123", "ir_hash": IR_HASH, "ttl_seconds": 3600,
        "expires_at": "2026-11-27T11:30:00Z", "created_by": "admin_user", "created_at": WHEN,
    },
    EventType.APPROVAL_CONSUMED: {
        "approval_id": "appr_a1b2c3d4", "tenant_id": "tenant_123", "ir_hash": IR_HASH, "consumed_by": "admin_user",
        "consumed_at": "2026-11-27T10:45:00Z", "time_to_consume_seconds": 900, "was_expired": False,
    },
    EventType.APPROVAL_EXPIRED: {
        "approval_id": "appr_a1b2c3d4", "tenant_id": "tenant_123", "ir_hash": IR_HASH,
        "expired_at": "2026-11-27T11:30:00Z", "created_at": WHEN, "ttl_seconds": 3600, "was_consumed": False,
    },
    EventType.APPROVAL_INVALID: {
        "tenant_id": "tenant_123", "ir_hash": IR_HASH, "reason": "tenant_mismatch", "attempted_by": "unknown_user",
        "attempted_at": "2026-11-27T10:50:00Z", "approval_id": None,
    },
    EventType.VALIDATED_PASS: {
        "tenant_id": "tenant_123", "request_id": "req_123", "ir_hash": IR_HASH, "risk_tier": 0,
        "requires_approval": False, "violations": [], "validated_at": WHEN, "step_count": 5,
    },
    EventType.VALIDATED_ESCALATE: {
        "tenant_id": "tenant_123", "request_id": "req_123", "ir_hash": IR_HASH, "risk_tier": 2,
        "requires_approval": True, "violations": [],
        "high_risk_steps": [{"step_index": 2, "action": "odoo.update", "provider": "odoo", "risk_tier": 2,
                             "reason": "critical odoo model `account.move`"}],
        "validated_at": WHEN, "step_count": 5,
    },
    EventType.VALIDATED_REJECT: {
        "tenant_id": "tenant_123", "request_id": "req_123", "ir_hash": IR_HASH, "risk_tier": 3,
        "requires_approval": False,
        "violations": [{"step_index": 1, "code": "UNKNOWN_ACTION", "message": "unknown action `custom.delete`",
                        "severity": "ERROR"}],
        "validated_at": WHEN, "step_count": 5,
    },
    EventType.DAG_DIFF_OK: {
        "tenant_id": "tenant_123", "request_id": "req_123", "ir_hash": IR_HASH, "dag_hash": IR_HASH,
        "step_count": 5, "dag_node_count": 5, "all_hashes_match": True, "verified_at": WHEN,
    },
    EventType.DAG_DIFF_FAILED: {
        "tenant_id": "tenant_123", "request_id": "req_123", "ir_hash": IR_HASH, "dag_hash": OTHER_HASH,
        "step_count": 5, "dag_node_count": 6, "all_hashes_match": False,
        "mismatch_details": {"missing_ir_steps": [], "extra_dag_nodes": [3],
                             "hash_mismatches": [{"step_index": 1, "ir_step_hash": IR_HASH,
                                                  "dag_node_hash": OTHER_HASH}]},
        "verified_at": WHEN,
    },
}


def seed_event(event_type: str, tenant: str = "tenant_123", correlation: str | None = "req_123") -> Event:
    payload = dict(SEED_PAYLOADS[event_type])
    payload["tenant_id"] = tenant
    return new_event(event_type, payload, tenant_id=tenant, correlation_id=correlation)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebhookServer:
    """A real HTTP server on 127.0.0.1 recording every POSTed JSON body; `status` is what it answers."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.bodies: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self.status = 200
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if owner.status < 300:
                    with owner._lock:
                        owner.bodies.append(json.loads(body))
                        owner.content_types.append(self.headers.get("content-type", ""))
                self.send_response(owner.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        with self._lock:
            return [b["id"] for b in self.bodies]


class RaisingSink:
    name = "raising"

    def __init__(self) -> None:
        self.calls = 0

    def deliver(self, event: Event) -> None:
        self.calls += 1
        raise RuntimeError("sink is broken")


class SleepingSink:
    """Blocks in `deliver` until released (or 30 s), like a sink that hangs."""

    name = "sleeping"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def deliver(self, event: Event) -> None:
        self.entered.set()
        self.release.wait(30)


class FlakySink:
    """Fails until `up` is set, then records."""

    def __init__(self, name: str = "flaky") -> None:
        self.name = name
        self.up = False
        self.failed = 0
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def deliver(self, event: Event) -> None:
        with self._lock:
            if not self.up:
                self.failed += 1
                raise ConnectionError("sink is down")
            self.events.append(event)

    def ids(self) -> list[str]:
        with self._lock:
            return [e.id for e in self.events]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
