"""Finding: 500 instead of 4xx. A 5,000-digit integer (Python's int/str conversion limit) gave
500 on /validate, /diff-audit and /authorize; a lone surrogate in `tenant_id` gave a plain-text
500 and one in `action` a 500 on /diff-audit. Every route now reads its body with the strict JSON
reader, so each is a 400 problem document with the pointer of the offending value."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from kernel.flows import ESCALATE_IR, dag_for

from .conftest import bearer

HUGE = "9" * 5000
IR = json.dumps(ESCALATE_IR)
PAIR = json.dumps({"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR)})
GRANT = "/approvals/areq_" + "0" * 32 + "/grant"

CASES = [
    ("/validate", IR.replace('"tenant_id"', f'"x": {HUGE}, "tenant_id"', 1), "/x"),
    ("/validate", IR.replace('"t1"', '"t\\ud800"', 1), "/tenant_id"),
    ("/diff-audit", PAIR.replace('"dag": [', f'"dag": [{HUGE}, ', 1), "/dag/0"),
    ("/diff-audit", PAIR.replace('"action": "', '"action": "\\udc00', 1), "/ir/steps/0/action"),
    ("/authorize", PAIR.replace('{"ir"', f'{{"approval_token": -{HUGE}, "ir"', 1), "/approval_token"),
    ("/authorize", PAIR.replace('"t1"', '"\\udfff"', 1), "/ir/tenant_id"),
    ("/approvals", '{"tenant_id": "t\\ud800", "ir_hash": "sha256:00"}', "/tenant_id"),
    ("/approvals/consume", f'{{"tenant_id": "t1", "ir_hash": "sha256:00", "token": {HUGE}}}', "/token"),
    ("/approvals/consume", '{"tenant_id": "t1", "tenant_id": "t2", "ir_hash": "x", "token": "y"}', "/tenant_id"),
    (GRANT, f'{{"ttl_seconds": {HUGE}}}', "/ttl_seconds"),
]


@pytest.mark.parametrize(("path", "body", "pointer"), CASES)
def test_hostile_json_is_a_400_problem_document(client: TestClient, path: str, body: str, pointer: str) -> None:
    response = client.post(path, content=body.encode(), headers={**bearer("root"), "content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/invalid-json")
    assert [e["pointer"] for e in problem["errors"]] == [pointer]
    assert "\\ud800" not in response.text and "9" * 100 not in problem["detail"]
