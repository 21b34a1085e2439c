"""`POST /approvals/{id}/claim`: after a grant made to be claimed, the requester takes the token once
(`Cache-Control: no-store`); a second claim is 409, another tenant 404, another principal 403."""

from __future__ import annotations

from fastapi.testclient import TestClient
from kernel.flows import ESCALATE_IR, dag_for

from .conftest import bearer


def _requested(client: TestClient) -> str:
    decision = client.post("/validate", json=ESCALATE_IR, headers=bearer("alice")).json()
    created = client.post("/approvals", json={"tenant_id": "t1", "ir_hash": decision["ir_hash"]},
                          headers=bearer("alice"))
    assert created.status_code == 201, created.text
    return str(created.json()["request_id"])


def test_approve_claim_and_authorize(client: TestClient) -> None:
    request_id = _requested(client)
    early = client.post(f"/approvals/{request_id}/claim", headers=bearer("alice"))
    assert early.status_code == 409 and "not granted yet" in early.json()["detail"]
    granted = client.post(f"/approvals/{request_id}/grant", json={"deliver": "claim", "ttl_seconds": 600},
                          headers=bearer("bob"))
    assert granted.status_code == 200, granted.text
    assert granted.json()["token"] is None and granted.json()["token_delivery"] == "claim"
    assert "seal1" not in granted.text and "sealed" not in granted.text

    other_tenant = client.post(f"/approvals/{request_id}/claim", headers=bearer("eve"))
    assert other_tenant.status_code == 404
    approver = client.post(f"/approvals/{request_id}/claim", headers=bearer("bob"))
    assert approver.status_code == 403 and approver.json()["type"].endswith("/not-claimant")
    assert approver.json()["detail"] == (f"`bob` neither requested approval request `{request_id}` nor submitted "
                                         "its ir: only they may claim its token")
    admin = client.post(f"/approvals/{request_id}/claim", headers=bearer("root"))
    assert admin.status_code == 403  # an admin of every tenant is still not the requester

    claimed = client.post(f"/approvals/{request_id}/claim", headers=bearer("alice"))
    assert claimed.status_code == 200, claimed.text
    assert claimed.headers["cache-control"] == "no-store"
    token = claimed.json()["token"]
    assert token.startswith("irgap_") and claimed.json()["claimed_by"] == "alice"
    again = client.post(f"/approvals/{request_id}/claim", headers=bearer("alice"))
    assert again.status_code == 409 and "was claimed by `alice`" in again.json()["detail"]
    assert token not in again.text

    shown = client.get(f"/approvals/{request_id}", headers=bearer("bob"))
    assert token not in shown.text and "seal1" not in shown.text and shown.json()["claimed_by"] == "alice"
    allowed = client.post("/authorize", json={"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR), "approval_token": token},
                          headers=bearer("alice")).json()
    assert allowed["allowed"] is True, allowed


def test_the_documented_grant_still_answers_with_the_token(client: TestClient) -> None:
    request_id = _requested(client)
    granted = client.post(f"/approvals/{request_id}/grant", headers=bearer("bob"))
    assert granted.status_code == 200 and granted.json()["token"].startswith("irgap_")
    assert granted.json()["token_delivery"] == "response"
    refused = client.post(f"/approvals/{request_id}/claim", headers=bearer("alice"))
    assert refused.status_code == 409 and "delivered in the answer to its grant" in refused.json()["detail"]
    bad = client.post(f"/approvals/{_requested(client)}/grant", json={"deliver": "email"}, headers=bearer("bob"))
    assert bad.status_code == 422
