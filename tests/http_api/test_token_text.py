"""Finding: tokens pasted into free text leaked. A token inside a request reason, a revoke
reason, an IR field or a `tenant_id` was stored and echoed (GET/list, a violation message, an
`ir.validated_reject` event, a 403 detail). Token-shaped text is now refused in every free-text
input, and redacted in every message, problem detail and event: the test pastes a real token
everywhere, then searches every response and the bytes of every state file for it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kernel.flows import ESCALATE_IR, dag_for

from irgov_policy.events.envelope import new_event
from irgov_policy.policy.decision import Violation
from irgov_policy.text_rules import redact_tokens

from .conftest import bearer
from .test_api import escalate


@pytest.fixture
def token(client: TestClient) -> str:
    request_id, _ = escalate(client)
    granted = client.post(f"/approvals/{request_id}/grant", headers=bearer("bob"))
    assert granted.status_code == 200
    return str(granted.json()["token"])


def _with(doc: dict[str, Any], pointer: tuple[Any, ...], value: str) -> dict[str, Any]:
    changed = copy.deepcopy(doc)
    target = changed
    for part in pointer[:-1]:
        target = target[part]
    target[pointer[-1]] = value
    return changed


def test_a_pasted_token_is_refused_or_redacted_everywhere(client: TestClient, token: str, tmp_path: Path) -> None:
    answers = []
    request_id, ir_hash = escalate(client, _with(ESCALATE_IR, ("request_id",), "req-second"))
    # free text of the approval workflow: refused without an echo
    for path, body in [("/approvals", {"tenant_id": "t1", "ir_hash": ir_hash, "reason": f"see {token}"}),
                       (f"/approvals/{request_id}/revoke", {"reason": f"leaked {token}"}),
                       (f"/approvals/{request_id}/grant", {"reason": f"ok {token}"}),
                       ("/approvals", {"tenant_id": token, "ir_hash": ir_hash}),
                       ("/approvals/consume", {"tenant_id": token, "ir_hash": ir_hash, "token": token})]:
        response = client.post(path, json=body, headers=bearer("root"))
        assert response.status_code in (403, 422), (path, response.text)
        answers.append(response)
    # any string of an IR: an invalid IR, a REJECT that names the field and not the token
    for pointer in [("tenant_id",), ("intent_summary",), ("steps", 0, "params", "note"), ("steps", 0, "action")]:
        for who in ("root", "alice"):
            doc = _with(ESCALATE_IR, pointer, f"x {token} y")
            for path, body in [("/validate", doc), ("/diff-audit", {"ir": doc, "dag": dag_for(ESCALATE_IR)}),
                               ("/authorize", {"ir": doc, "dag": dag_for(ESCALATE_IR), "approval_token": token})]:
                response = client.post(path, json=body, headers=bearer(who))
                answers.append(response)
                if path == "/validate" and response.status_code == 200:
                    decision = response.json()
                    assert decision["status"] == "REJECT"
                    assert any("holds an approval token" in v["message"] for v in decision["violations"]), decision
    answers.append(client.get("/approvals", headers=bearer("alice")))
    answers.append(client.get(f"/approvals/{request_id}", headers=bearer("alice")))
    for response in answers:
        assert token not in response.text, response.text
        assert token[:20] not in response.text, response.text
    client.app.state.governance.bus.flush(5)  # type: ignore[attr-defined]
    state = [p for p in (tmp_path / "state").iterdir() if p.is_file()]
    assert any(p.name.startswith("outbox.db") for p in state)
    for file in state:
        assert token.encode() not in file.read_bytes(), file.name


def test_redaction_of_messages_and_events() -> None:
    token = "irgap_" + "A1b2" * 12
    assert redact_tokens(f"unknown action `{token}` here") == "unknown action `irgap_<redacted>` here"
    assert Violation(0, "UNKNOWN_ACTION", f"`{token}`").message == "`irgap_<redacted>`"
    event = new_event("ir.validated_reject", {"violations": [{"message": token}], token: 1}, tenant_id=token)
    assert token not in repr(event.payload) and event.tenant_id == "irgap_<redacted>"
