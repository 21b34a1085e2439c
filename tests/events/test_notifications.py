"""Notifications by webhook: a real HTTP server receives a POST for a new approval request and
for each decision on it, in JSON or Slack's `{"text": ...}`; a failing receiver is retried a
bounded number of times and never breaks a decision; no token is ever sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kernel.flows import ESCALATE_IR, dag_for

from irgov_policy.errors import ConfigError
from irgov_policy.events import ExtensionEventType
from irgov_policy.events.payloads import event_problems
from irgov_policy.kernel import Governance

from .helpers import free_port


class Receiver:
    """127.0.0.1 HTTP server keeping every POST body; answers `status`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.posts: list[bytes] = []
        self.status = 200
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with owner.lock:
                    owner.posts.append(body)
                self.send_response(owner.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/approvals"

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(b) for b in self.posts]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.posts) < count:
            time.sleep(0.02)
        return self.bodies()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _kernel(tmp_path: Path, receiver: Receiver, **overrides: Any) -> Governance:
    return Governance.from_config(environ={}, approval_store=f"sqlite:///{tmp_path}/approvals.db",
                                  outbox=f"sqlite:///{tmp_path}/outbox.db", notify_webhooks=(receiver.url,),
                                  **overrides)


def test_a_new_request_and_each_decision_are_posted_as_json(tmp_path: Path, receiver: Receiver) -> None:
    doc = dict(ESCALATE_IR, intent_summary="move www")
    with _kernel(tmp_path, receiver) as gov:
        decision = gov.validate(doc, submitted_by="sam")
        request_id = gov.request_approval(decision, "rita", reason="release").request.request_id
        first = receiver.wait_for(1)
        assert [b["notification"] for b in first] == ["requested"]  # the escalation itself is not notified
        grant = gov.grant(request_id, "bob", "t1", deliver="claim")
        token = gov.claim_token(request_id, "t1", by="rita").token
        assert token is not None
        assert gov.authorize_execution(doc, dag_for(doc), token, executed_by="runner").allowed
        denied = gov.request_approval(decision, "rita").request.request_id
        gov.revoke(denied, "t1", by="bob", reason="not during the freeze")
        bodies = receiver.wait_for(5)
    assert [b["notification"] for b in bodies] == ["requested", "granted", "consumed", "requested", "revoked"]
    requested, granted, consumed, _, revoked = bodies
    assert requested["approval_request_id"] == request_id and requested["tenant_id"] == "t1"
    assert requested["requested_by"] == "rita" and requested["reason"] == "release"
    assert requested["intent_summary"] == "move www" and requested["step_count"] == 1
    assert requested["risk_tier"] == decision.risk_tier and requested["ir_request_id"] == "req-escalate"
    assert requested["event_type"] == "ir.approval_requested" and requested["event_id"] and requested["at"]
    assert granted["approval_id"] == grant.request.approval.approval_id and granted["created_by"] == "bob"
    assert consumed["consumed_by"] == "runner"
    assert revoked["approval_request_id"] == denied and revoked["revoked_by"] == "bob"
    assert revoked["reason"] == "not during the freeze"
    raw = b"".join(receiver.posts).decode()
    assert token not in raw and "irgap_" not in raw and "seal1" not in raw and "digest" not in raw


def test_the_slack_form_is_one_text_line(tmp_path: Path, receiver: Receiver) -> None:
    with _kernel(tmp_path, receiver, notify_format="slack") as gov:
        decision = gov.validate(dict(ESCALATE_IR, intent_summary="move www"), submitted_by="sam")
        request_id = gov.request_approval(decision, "rita").request.request_id
        gov.revoke(request_id, "t1", by="bob", reason="no")
        bodies = receiver.wait_for(2)
    assert [set(b) for b in bodies] == [{"text"}, {"text"}]
    assert bodies[0]["text"] == (f"Approval requested for tenant t1: {request_id} (tier {decision.risk_tier}, "
                                 "1 steps) by rita: move www")
    assert bodies[1]["text"] == f"Approval revoked for tenant t1: {request_id} by bob (no)"


def test_a_failing_receiver_is_retried_a_bounded_number_of_times_and_breaks_nothing(
        tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.status = 500
    with _kernel(tmp_path, receiver) as gov:
        sink = next(s for s in gov.bus.sinks if getattr(s, "name", "") == "notify")
        sink.backoff = 0.01
        decision = gov.validate(ESCALATE_IR, submitted_by="sam")
        request_id = gov.request_approval(decision, "rita").request.request_id
        assert gov.grant(request_id, "bob", "t1").token is not None  # the decision does not wait or fail
        assert gov.flush(20)
        assert sink.dropped == 2 and sink.sent == 0
    assert len(receiver.posts) == 2 * sink.attempts
    assert "notification `requested` to http://127.0.0.1:" in caplog.text and "answered 500" in caplog.text
    assert "/hooks/approvals dropped after 3 attempts" in caplog.text


def test_the_request_events_follow_their_schemas(tmp_path: Path, receiver: Receiver) -> None:
    from irgov_policy.events import MemorySink

    sink = MemorySink("seen")
    with Governance.from_config(environ={}, approval_store=f"sqlite:///{tmp_path}/a.db", outbox="memory:",
                                sinks=[sink]) as gov:
        decision = gov.validate(ESCALATE_IR, submitted_by="sam")
        request_id = gov.request_approval(decision, "rita").request.request_id
        gov.revoke(request_id, "t1", by="bob")
        gov.flush(10)
    events = [e for e in sink.events if e.type in {t.value for t in ExtensionEventType}]
    assert [e.type for e in events] == ["ir.approval_requested", "ir.approval_request_revoked"]
    for event in events:
        assert event_problems(event.to_dict()) == [], event.to_dict()
        assert event.meta["correlation_id"] == "req-escalate"


def test_bad_notification_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="`notify_format` must be one of json, slack, not `xml`"):
        Governance.from_config(environ={}, approval_store="memory://", outbox="memory:", notify_format="xml")
    with pytest.raises(ConfigError, match="notification url `ftp://example.com/x` must be an http"):
        Governance.from_config(environ={}, approval_store="memory://", outbox="memory:",
                               notify_webhooks=("ftp://example.com/x",))
