"""The HTTP API: the flow, the auth matrix, problem details and the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kernel.flows import ESCALATE_IR, PASS_IR, REJECT_IR, dag_for, ir

from irgov_policy.errors import ConfigError
from irgov_policy.http import hash_api_key
from irgov_policy.http.auth import ApiKeyAuth

from .conftest import KEYS, bearer

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= PROBLEM_KEYS and body["status"] == status
    assert body["type"].startswith("https://irgov.dev/problems/")
    assert body["detail"] and not body["detail"].endswith(".")
    return body


def escalate(client: TestClient, doc: dict[str, Any] = ESCALATE_IR) -> tuple[str, str]:
    decision = client.post("/validate", json=doc, headers=bearer("alice")).json()
    assert decision["status"] == "ESCALATE"
    created = client.post("/approvals", json={"tenant_id": doc["tenant_id"], "ir_hash": decision["ir_hash"],
                                              "reason": "dns change"}, headers=bearer("alice"))
    assert created.status_code == 201, created.text
    return created.json()["request_id"], decision["ir_hash"]


def test_full_flow(client: TestClient) -> None:
    request_id, ir_hash = escalate(client)
    refused = client.post("/authorize", json={"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR)}, headers=bearer("alice"))
    assert refused.status_code == 200 and refused.json()["allowed"] is False
    granted = client.post(f"/approvals/{request_id}/grant", json={"ttl_seconds": 600}, headers=bearer("bob"))
    assert granted.status_code == 200, granted.text
    assert granted.headers["cache-control"] == "no-store"
    token = granted.json()["token"]
    assert token.startswith("irgap_") and granted.json()["status"] == "pending"
    assert granted.json()["approval"]["ttl_seconds"] == 600
    body = {"ir": ESCALATE_IR, "dag": {"nodes": dag_for(ESCALATE_IR)}, "approval_token": token}
    allowed = client.post("/authorize", json=body, headers=bearer("alice")).json()
    assert allowed["allowed"] is True and allowed["reasons"] == []
    assert allowed["approval"]["success"] is True
    again = client.post("/authorize", json=body, headers=bearer("alice")).json()
    assert again["allowed"] is False and again["approval"]["reason"] == "already_consumed"
    shown = client.get(f"/approvals/{request_id}", headers=bearer("bob")).json()
    assert shown["status"] == "consumed" and shown["approval"]["consumed_by"] == "alice"
    assert "token" not in shown
    listed = client.get("/approvals", params={"status": "consumed"}, headers=bearer("alice")).json()
    assert [i["request_id"] for i in listed["items"]] == [request_id]
    audit = client.post("/diff-audit", json={"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR)}, headers=bearer("bob"))
    assert audit.json()["success"] is True and audit.json()["ir_hash"] == ir_hash


def test_no_response_ever_holds_a_digest_or_a_second_token(client: TestClient) -> None:
    request_id, ir_hash = escalate(client)
    token = client.post(f"/approvals/{request_id}/grant", headers=bearer("bob")).json()["token"]
    bodies = [
        client.get(f"/approvals/{request_id}", headers=bearer("root")).text,
        client.get("/approvals", params={"tenant_id": "t1"}, headers=bearer("root")).text,
        client.post("/approvals/consume", json={"tenant_id": "t1", "ir_hash": ir_hash, "token": token},
                    headers=bearer("alice")).text,
        client.post(f"/approvals/{request_id}/revoke", headers=bearer("bob")).text,
    ]
    for text in bodies:
        assert token not in text and "token_digest" not in text and "kid" not in text
        # The only digests shown are the rule packs' (what a human approves under), never a token's.
        assert _digest_keys(json.loads(text)) <= {"/decision/packs/digest"}


def _digest_keys(value: object, path: str = "") -> set[str]:
    """Where a key holding `digest` sits, array indexes left out."""
    if isinstance(value, dict):
        found = {f"{path}/{k}" for k in value if "digest" in k}
        for k, v in value.items():
            found |= _digest_keys(v, f"{path}/{k}")
        return found
    if isinstance(value, list):
        return set().union(*(_digest_keys(v, path) for v in value)) if value else set()
    return set()


@pytest.mark.parametrize(("method", "path", "who", "status"), [
    ("post", "/validate", None, 401),
    ("post", "/validate", "nobody", 401),
    ("get", "/packs", None, 401),
    ("get", "/approvals", "nobody", 401),
    ("post", "/authorize", "bob", 403),
    ("post", "/approvals", "bob", 403),
    ("post", "/approvals/consume", "bob", 403),
    ("post", "/approvals/{id}/grant", "alice", 403),
    ("post", "/approvals/{id}/revoke", "alice", 403),
    ("get", "/approvals/{id}", "eve", 404),
    ("post", "/approvals/{id}/grant", "eve", 404),
    ("post", "/approvals/{id}/revoke", "eve", 404),
])
def test_auth_matrix(client: TestClient, method: str, path: str, who: str | None, status: int) -> None:
    request_id, ir_hash = escalate(client)
    headers = {} if who is None else ({"Authorization": "Bearer wrong-key-0000000000"} if who == "nobody"
                                      else bearer(who))
    bodies = {"/validate": ESCALATE_IR, "/authorize": {"ir": ESCALATE_IR, "dag": []},
              "/approvals": {"tenant_id": "t1", "ir_hash": ir_hash},
              "/approvals/consume": {"tenant_id": "t1", "ir_hash": ir_hash, "token": "irgap_x"}}
    kwargs: dict[str, Any] = {"headers": headers}
    if method == "post":
        kwargs["json"] = bodies.get(path, {})
    response = getattr(client, method)(path.replace("{id}", request_id), **kwargs)
    problem = assert_problem(response, status)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert "irgap_" not in problem["detail"]  # the token sent (`irgap_x`), or any other, never comes back


def test_tenant_scoping(client: TestClient) -> None:
    other = ir(ESCALATE_IR, tenant_id="t2")
    assert_problem(client.post("/validate", json=other, headers=bearer("alice")), 403)
    assert client.post("/validate", json=other, headers=bearer("eve")).json()["tenant_id"] == "t2"
    assert_problem(client.get("/approvals", params={"tenant_id": "t2"}, headers=bearer("alice")), 403)
    assert_problem(client.get("/approvals", headers=bearer("root")), 422)  # which tenant?
    request_id, _ = escalate(client)
    assert client.get(f"/approvals/{request_id}", headers=bearer("root")).status_code == 200


def test_separation_of_duties_over_http(client: TestClient) -> None:
    # root (admin) submits an IR and may not approve the request it made
    decision = client.post("/validate", json=ir(ESCALATE_IR, request_id="r-root"), headers=bearer("root")).json()
    created = client.post("/approvals", json={"tenant_id": "t1", "ir_hash": decision["ir_hash"]},
                          headers=bearer("root")).json()
    problem = assert_problem(client.post(f"/approvals/{created['request_id']}/grant", headers=bearer("root")), 403)
    assert problem["type"].endswith("separation-of-duties")
    assert client.post(f"/approvals/{created['request_id']}/grant", headers=bearer("bob")).status_code == 200
    assert_problem(client.post(f"/approvals/{created['request_id']}/grant", headers=bearer("bob")), 409)


def test_refusals_are_problems(client: TestClient) -> None:
    passed = client.post("/validate", json=PASS_IR, headers=bearer("alice")).json()
    assert passed["status"] == "PASS"
    problem = assert_problem(client.post("/approvals", json={"tenant_id": "t1", "ir_hash": passed["ir_hash"]},
                                         headers=bearer("alice")), 409)
    assert "decided `PASS`" in problem["detail"]
    rejected = client.post("/validate", json=REJECT_IR, headers=bearer("alice")).json()
    assert rejected["status"] == "REJECT"
    assert_problem(client.post("/approvals", json={"tenant_id": "t1", "ir_hash": rejected["ir_hash"]},
                               headers=bearer("alice")), 409)
    assert_problem(client.get("/approvals/areq_" + "0" * 32, headers=bearer("alice")), 404)
    assert_problem(client.get("/approvals/not-an-id", headers=bearer("alice")), 422)
    assert_problem(client.get("/nowhere"), 404)


def test_invalid_bodies_are_problems_with_pointers(client: TestClient) -> None:
    dup = b'{"tenant_id": "t1", "tenant_id": "t2", "steps": []}'
    problem = assert_problem(client.post("/validate", content=dup, headers=bearer("alice")), 400)
    assert "duplicate" in problem["detail"]
    invalid = client.post("/validate", json={"tenant_id": "t1", "steps": [{"action": "x"}]}, headers=bearer("alice"))
    assert invalid.status_code == 200 and invalid.json()["status"] == "REJECT"
    assert invalid.json()["violations"][0]["code"] == "INVALID_IR"
    problem = assert_problem(client.post("/approvals", json={"tenant_id": "t1"}, headers=bearer("alice")), 422)
    assert problem["errors"] == [{"pointer": "/ir_hash", "message": "field required"}]
    problem = assert_problem(client.post("/diff-audit", json={"ir": {"tenant_id": "t1"}, "dag": []},
                                         headers=bearer("alice")), 422)
    assert problem["errors"][0]["pointer"] == "/ir" and "`steps`" in problem["errors"][0]["message"]
    assert_problem(client.post("/authorize", json={"ir": PASS_IR}, headers=bearer("alice")), 422)
    assert_problem(client.post("/authorize", json={"ir": PASS_IR, "dag": [], "x": 1}, headers=bearer("alice")), 422)
    too_big = b"[" + b"1," * 5_000_000 + b"1]"
    assert_problem(client.post("/validate", content=too_big, headers=bearer("alice")), 413)


def test_openapi_is_complete(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    expected = {
        ("post", "/validate"), ("post", "/diff-audit"), ("post", "/authorize"), ("post", "/approvals"),
        ("post", "/approvals/{request_id}/grant"), ("post", "/approvals/{request_id}/claim"),
        ("post", "/approvals/consume"), ("get", "/approvals/{request_id}"),
        ("get", "/approvals"), ("post", "/approvals/{request_id}/revoke"), ("get", "/packs"), ("get", "/health"),
        ("post", "/packs/reload"), ("get", "/metrics"),
    }
    found = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert found == expected
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary"), (method, path)
            assert any(code.startswith("2") for code in op["responses"]), (method, path)
            if method == "post" and not path.endswith(("/grant", "/claim", "/revoke", "/packs/reload")):
                assert "requestBody" in op, (method, path)
            if path != "/health":
                assert op["security"] == [{"bearer": []}]
                assert op["responses"]["401"]["content"]["application/problem+json"]
    assert "ProblemDetails" in spec["components"]["schemas"]
    ir_body = spec["paths"]["/validate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert ir_body["required"] == ["tenant_id", "steps"] and "$ref" not in str(ir_body)


def test_packs_and_health(client: TestClient) -> None:
    packs = client.get("/packs", headers=bearer("alice")).json()
    assert packs["packs"] and all(p["digest"].startswith("sha256:") for p in packs["packs"])
    assert packs["digest"].startswith("sha256:") and packs["last_reload_error"] is None
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["packs"]["digest"] == packs["digest"]


def test_api_key_entries() -> None:
    hashed = hash_api_key("a-long-secret-key-123")
    auth = ApiKeyAuth([f"ops:approver:t1:{hashed}", "ops:approver:t2:another-secret-key-9"])
    principal = auth.authenticate("Bearer a-long-secret-key-123")
    assert principal.name == "ops" and principal.tenants == frozenset({"t1", "t2"})
    for bad, message in [("x:root:*:a-long-secret-key-123", "unknown role"), ("x:admin:*:short", "at least"),
                         ("nocolons", "principal:role:tenant:key")]:
        with pytest.raises(ConfigError, match=message):
            ApiKeyAuth([bad])
    assert KEYS  # the shared keys are long enough for the real fixture


@pytest.mark.parametrize("ttl", [True, "60", 1.0, 0, -5])
def test_grant_ttl_must_be_a_positive_json_integer(client: TestClient, ttl: Any) -> None:
    request_id, _ = escalate(client)
    problem = assert_problem(client.post(f"/approvals/{request_id}/grant", json={"ttl_seconds": ttl},
                                         headers=bearer("bob")), 422)
    assert problem["errors"][0]["pointer"] == "/ttl_seconds"
    assert client.get(f"/approvals/{request_id}", headers=bearer("bob")).json()["status"] == "requested"


def test_without_api_keys_only_health_answers(tmp_path: Any) -> None:
    from irgov_policy.http import create_app
    from irgov_policy.kernel import Governance

    from .conftest import settings

    gov = Governance.from_config(environ={}, **settings(tmp_path, api_keys=()))
    with TestClient(create_app(governance=gov)) as bare:
        assert bare.get("/health").status_code == 200
        assert_problem(bare.get("/packs", headers=bearer("root")), 401)
        assert_problem(bare.post("/validate", json=PASS_IR, headers=bearer("alice")), 401)
    gov.close()


def test_an_app_around_a_given_kernel_stops_what_it_started(tmp_path: Any) -> None:
    import asyncio

    from irgov_policy.http import create_app
    from irgov_policy.kernel import Governance

    from .conftest import settings

    gov = Governance.from_config(environ={}, **settings(tmp_path))
    app = create_app(governance=gov)

    def sweepers() -> int:
        return sum(1 for t in asyncio.all_tasks() if t.get_name() == "irgov-approval-sweeper" and not t.done())

    async def one_lifespan() -> None:
        async with app.router.lifespan_context(app):
            assert sweepers() == 1
        await asyncio.sleep(0)
        assert sweepers() == 0

    asyncio.run(one_lifespan())
    asyncio.run(one_lifespan())
    assert gov.health()["status"] == "ok"  # the kernel itself stays usable: its owner closes it
    gov.close()
