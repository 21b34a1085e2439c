"""`GET /approvals/{id}` shows what a human needs to judge a request, steps page by page; list
items are summaries, filtered by status and tier, newest or most urgent first."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from kernel.flows import ESCALATE_IR, ir

from .conftest import bearer


def _steps(n: int, action: str = "dns.update_records") -> list[dict[str, Any]]:
    return [{"action": action, "provider": "dns.hetzner", "resource": f"zone:e{i}.example.com",
             "params": {"i": i}, "idempotency_key": f"k{i}"} for i in range(n)]


def _request(client: TestClient, doc: dict[str, Any]) -> str:
    decision = client.post("/validate", json=doc, headers=bearer("alice")).json()
    assert decision["status"] == "ESCALATE", decision
    created = client.post("/approvals", json={"tenant_id": "t1", "ir_hash": decision["ir_hash"]},
                          headers=bearer("alice"))
    assert created.status_code == 201, created.text
    return str(created.json()["request_id"])


def test_details_page_the_steps_and_explain_who_may_grant(client: TestClient) -> None:
    request_id = _request(client, ir(ESCALATE_IR, intent_summary="move the zones", steps=_steps(12)))
    first = client.get(f"/approvals/{request_id}", params={"steps_limit": 5}, headers=bearer("alice"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["intent_summary"] == "move the zones" and body["ir_request_id"] == "req-escalate"
    assert body["submitted_by"] == ["alice"] and body["requested_by"] == "alice"
    assert body["grant_refused"] == f"`alice` requested approval request `{request_id}` and cannot grant it"
    assert body["grant_ttl"] == {"default_seconds": 3600.0, "max_seconds": 604800.0}
    assert body["decision"]["packs"] and body["details_missing"] is None
    seen = [s["index"] for s in body["steps"]["items"]]
    offset = body["steps"]["next_offset"]
    while offset is not None:
        page = client.get(f"/approvals/{request_id}", params={"steps_offset": offset, "steps_limit": 5},
                          headers=bearer("bob")).json()
        assert page["grant_refused"] is None and page["steps"]["total"] == 12
        seen += [s["index"] for s in page["steps"]["items"]]
        offset = page["steps"]["next_offset"]
    assert seen == list(range(12))
    for bad in ({"steps_limit": 0}, {"steps_limit": 501}, {"steps_offset": -1}, {"steps_offset": "x"}):
        refused = client.get(f"/approvals/{request_id}", params=bad, headers=bearer("bob"))
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
    # Another tenant's request does not exist for this principal.
    assert client.get(f"/approvals/{request_id}", headers=bearer("eve")).status_code == 404


def test_list_items_are_summaries_filtered_and_sorted(client: TestClient) -> None:
    routine = _request(client, ir(ESCALATE_IR, request_id="r-a", intent_summary="z" * 1000, steps=_steps(3)))
    destructive = _request(client, ir(ESCALATE_IR, request_id="r-b", steps=_steps(1, "dns.delete_zone")))
    newest = client.get("/approvals", headers=bearer("bob")).json()["items"]
    assert [i["request_id"] for i in newest] == [destructive, routine]
    item = newest[1]
    assert (item["ir_request_id"], item["step_count"], item["status"], item["deadline"]) == (
        "r-a", 3, "requested", "request_purged")
    assert len(item["intent_summary"]) == 300 and item["intent_summary"].endswith("\u2026")
    assert item["age_seconds"] >= 0 and item["time_left_seconds"] > 0 and item["deadline_at"]
    assert "steps" not in item and "decision" not in item
    tiers = {i["request_id"]: i["risk_tier"] for i in newest}
    assert tiers[destructive] > tiers[routine]
    urgent = client.get("/approvals", params={"sort": "urgent", "limit": 1}, headers=bearer("bob")).json()
    assert [i["request_id"] for i in urgent["items"]] == [destructive] and urgent["next_cursor"] == "urgent:1"
    rest = client.get("/approvals", params={"sort": "urgent", "cursor": urgent["next_cursor"]},
                      headers=bearer("bob")).json()
    assert [i["request_id"] for i in rest["items"]] == [routine] and rest["next_cursor"] is None
    only = client.get("/approvals", params={"tier": tiers[routine], "status": "requested"},
                      headers=bearer("bob")).json()
    assert [i["request_id"] for i in only["items"]] == [routine]
    both = client.get("/approvals", params=[("tier", tiers[routine]), ("tier", tiers[destructive])],
                      headers=bearer("bob")).json()
    assert len(both["items"]) == 2
    for bad in ({"tier": 4}, {"sort": "oldest"}, {"sort": "urgent", "cursor": "nope"}):
        assert client.get("/approvals", params=bad, headers=bearer("bob")).status_code == 422
