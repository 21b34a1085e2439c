"""Finding: separation of duties through the gate. `/authorize` recorded its own validation with
no submitter, so an admin who brought an IR in only through `/authorize` could later grant it
when someone else asked for its approval. The gate's caller is now recorded as a submitter."""

from __future__ import annotations

from fastapi.testclient import TestClient
from kernel.flows import ESCALATE_IR, dag_for

from .conftest import bearer


def test_whoever_brought_the_ir_through_the_gate_cannot_grant_it(client: TestClient) -> None:
    gate = client.post("/authorize", json={"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR)}, headers=bearer("root"))
    assert gate.status_code == 200 and gate.json()["allowed"] is False
    ir_hash = gate.json()["ir_hash"]
    asked = client.post("/approvals", json={"tenant_id": "t1", "ir_hash": ir_hash}, headers=bearer("alice"))
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["request_id"]
    refused = client.post(f"/approvals/{request_id}/grant", headers=bearer("root"))
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"].endswith("/separation-of-duties")
    granted = client.post(f"/approvals/{request_id}/grant", headers=bearer("bob"))
    assert granted.status_code == 200, granted.text
