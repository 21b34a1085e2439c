"""What a human needs to judge an approval request: steps, rule hits, packs, who and when, the TTL
a grant would get; steps page by page, and nothing cut without saying so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.errors import ApprovalError
from irgov_policy.events import MemorySink
from irgov_policy.kernel import Governance, request_details

from .conftest import embedded
from .flows import ESCALATE_IR, ir

BASELINE = Path(__file__).resolve().parents[2] / "irgov_policy" / "data" / "baseline.irgov.yaml"
AUDIT_PACK = """apiVersion: irgov.dev/v1
kind: RulePack
metadata:
  name: audit-notes
  version: "1"
rules:
  - id: dns-change-note
    when: step.action == "dns.update_records"
    violation: {code: DNS_NOTE, severity: WARNING, message: a dns change was seen}
    mode: audit
"""
HOSTILE = "<img src=x onerror=alert(1)></script>"


def dns_step(i: int, **params: Any) -> dict[str, Any]:
    return {"action": "dns.update_records", "provider": "dns.hetzner", "resource": f"zone:example-{i}.com",
            "params": {"records": [{"type": "A", "name": "www", "value": "203.0.113.7"}], **params},
            "idempotency_key": f"k-{i}", "step_id": f"s{i}"}


def escalated(gov: Governance, doc: dict[str, Any], *, by: str = "sam") -> str:
    decision = gov.validate(doc, submitted_by="sam")
    assert decision.status == "ESCALATE", decision.to_dict()
    return gov.request_approval(decision, by, reason="please look").request.request_id


def test_a_request_carries_steps_hits_packs_who_and_ttl(gov: Governance) -> None:
    doc = ir(ESCALATE_IR, intent_summary=f"update www {HOSTILE}", steps=[
        dns_step(0, a_note=HOSTILE, blob="x" * 5000), {"action": "course.create", "provider": "course_factory.v1",
                                                     "resource": "course:intro", "idempotency_key": "k-c"}])
    request_id = escalated(gov, doc, by="rita")
    details = gov.request_details(request_id, "t1", viewer="rita").to_dict()
    assert details["ir_request_id"] == "req-escalate"
    assert details["intent_summary"] == f"update www {HOSTILE}"
    assert details["requested_by"] == "rita" and details["submitted_by"] == ["sam"]
    assert details["requested_at"] and details["status"] == "requested" and details["step_count"] == 2
    assert details["grant_ttl"] == {"default_seconds": 3600.0, "max_seconds": 7 * 86400.0}
    assert details["grant_refused"] == f"`rita` requested approval request `{request_id}` and cannot grant it"
    assert details["deadline"] == "request_purged" and details["time_left_seconds"] > 29 * 86400
    decision = details["decision"]
    assert decision["status"] == "ESCALATE" and decision["risk_tier"] == details["risk_tier"]
    assert decision["packs"] and all(p["digest"].startswith("sha256:") for p in decision["packs"])
    assert decision["engine"] and decision["evaluated_at"] and decision["decided_at"]
    assert [h["step_index"] for h in decision["high_risk_steps"]] == [0]
    steps = details["steps"]
    assert (steps["total"], steps["recorded"], steps["next_offset"], steps["omitted"]) == (2, 2, None, None)
    first, second = steps["items"]
    assert (first["index"], first["step_id"], first["action"], first["provider"]) == (
        0, "s0", "dns.update_records", "dns.hetzner")
    assert first["resource"] == {"text": "zone:example-0.com", "truncated": False, "size": 18}
    assert first["high_risk"] is True and first["tier"] == details["risk_tier"]
    assert first["hits"] and all(h["reason"] and h["rule"] for h in first["hits"])
    # The params are longer than their bound: cut, and saying so with the full size.
    params = first["params"]
    full = json.dumps(doc["steps"][0]["params"], ensure_ascii=False, sort_keys=True)
    assert params["truncated"] is True and params["size"] == len(full.encode())
    assert params["text"] == full[:request_details.PARAMS_CHARS] and HOSTILE in params["text"]
    assert first["constraints"] == {"text": "{}", "truncated": False, "size": 2}
    assert second["high_risk"] is False and second["action"] == "course.create"
    # Another principal is not refused; a granted request refuses nobody any more.
    assert gov.request_details(request_id, "t1", viewer="bob").grant_refused is None
    assert gov.request_details(request_id, "t1", viewer="sam").grant_refused.startswith("`sam` submitted")


def test_violations_found_in_audit_mode_are_shown_apart(tmp_path: Path, sink: MemorySink) -> None:
    pack = tmp_path / "audit-notes.irgov.yaml"
    pack.write_text(AUDIT_PACK, encoding="utf-8")
    with Governance.from_config(environ={}, sinks=[sink], packs=(str(BASELINE), str(pack)),
                                **embedded(tmp_path)) as gov:
        request_id = escalated(gov, ESCALATE_IR)
        decision = gov.request_details(request_id, "t1").to_dict()["decision"]
    assert [(v["code"], v["mode"], v["step_index"]) for v in decision["audit_violations"]] == [("DNS_NOTE", "audit", 0)]
    assert decision["audit_violations_total"] == 1 and decision["violations"] == []
    assert {p["name"] for p in decision["packs"]} >= {"audit-notes"}


def test_steps_come_page_by_page_with_totals(gov: Governance) -> None:
    doc = ir(ESCALATE_IR, steps=[dns_step(i) for i in range(23)])
    request_id = escalated(gov, doc)
    seen: list[int] = []
    offset: int | None = 0
    while offset is not None:
        page = gov.request_details(request_id, "t1", steps_offset=offset, steps_limit=10).to_dict()["steps"]
        assert page["total"] == 23 and page["recorded"] == 23 and page["limit"] == 10
        seen += [s["index"] for s in page["items"]]
        offset = page["next_offset"]
    assert seen == list(range(23))
    past = gov.request_details(request_id, "t1", steps_offset=40).to_dict()["steps"]
    assert past["items"] == [] and past["next_offset"] is None and past["total"] == 23
    for bad in ({"steps_offset": -1}, {"steps_limit": 0}, {"steps_limit": 501}, {"steps_offset": True}):
        with pytest.raises(ApprovalError, match="steps_"):
            gov.request_details(request_id, "t1", **bad)


def test_a_large_ir_is_recorded_up_to_the_bound_and_says_what_is_missing(
        gov: Governance, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_details, "MAX_SNAPSHOT_CHARS", 20_000)
    request_id = escalated(gov, ir(ESCALATE_IR, steps=[dns_step(i) for i in range(40)]))
    page = gov.request_details(request_id, "t1", steps_limit=500).to_dict()["steps"]
    assert page["total"] == 40 and 0 < page["recorded"] < 40
    assert [s["index"] for s in page["items"]] == list(range(page["recorded"]))
    assert page["omitted"] == (f"steps from index {page['recorded']} on are not recorded: the details of a "
                               "decision are bounded to 20000 characters")
    assert len(gov.ledger.get_decision("t1", gov.get_request(request_id, "t1").request.ir_hash,
                                       with_snapshot=True).snapshot) <= 20_000


def test_a_request_without_details_says_why(gov: Governance) -> None:
    grant = gov.break_glass("t1", "sha256:" + "ab" * 32, "oncall", "outage")
    details = gov.request_details(grant.request.request.request_id, "t1").to_dict()
    assert details["decision"] is None and details["steps"]["items"] == [] and details["steps"]["total"] is None
    assert details["details_missing"] == "minted by break-glass: no decision was made on this ir"
    assert details["deadline"] == "approval_expires" and 0 < details["time_left_seconds"] <= 3600


def test_the_snapshot_is_read_only_when_asked_for(gov: Governance) -> None:
    request_id = escalated(gov, ESCALATE_IR)
    entry = gov.ledger.get_decision("t1", gov.get_request(request_id, "t1").request.ir_hash, with_snapshot=True)
    assert entry is not None and entry.snapshot is not None and entry.step_count == 1
    assert gov.ledger.get_decision("t1", entry.ir_hash).snapshot is None  # only when asked for


def test_lists_filter_by_tier_and_sort_by_urgency(gov: Governance) -> None:
    tier3 = ir(ESCALATE_IR, request_id="r3", steps=[dict(dns_step(1), action="dns.delete_zone")])
    tier2 = ir(ESCALATE_IR, request_id="r2")
    old2 = escalated(gov, tier2)
    high = escalated(gov, tier3)
    new2 = escalated(gov, ir(tier2, request_id="r2b"))
    tiers = {r: gov.get_request(r, "t1").request.risk_tier for r in (old2, high, new2)}
    assert tiers[high] > tiers[old2] == tiers[new2]
    newest, _ = gov.list_requests("t1")
    assert [v.request.request_id for v in newest] == [new2, high, old2]
    urgent, cursor = gov.list_requests("t1", sort="urgent", limit=2)
    assert [v.request.request_id for v in urgent] == [high, old2] and cursor == "urgent:2"
    rest, cursor = gov.list_requests("t1", sort="urgent", limit=2, cursor=cursor)
    assert [v.request.request_id for v in rest] == [new2] and cursor is None
    only, _ = gov.list_requests("t1", tiers=[tiers[old2]])
    assert {v.request.request_id for v in only} == {old2, new2}
    item = request_details.list_item(newest[0], now_us=newest[0].request.created_us + 5_000_000,
                                     retention_us=gov.retention_us)
    assert (item["ir_request_id"], item["step_count"], item["age_seconds"], item["deadline"]) == ("r2b", 1, 5,
                                                                                                 "request_purged")
    for bad in ({"sort": "oldest"}, {"tiers": [4]}, {"tiers": []}, {"sort": "urgent", "cursor": "urgent:x"}):
        with pytest.raises(ApprovalError):
            gov.list_requests("t1", **bad)


def test_a_long_intent_summary_is_shortened_in_lists_only(gov: Governance) -> None:
    text = "y" * 1500
    request_id = escalated(gov, ir(ESCALATE_IR, intent_summary=text))
    view = gov.get_request(request_id, "t1")
    item = request_details.list_item(view, now_us=view.request.created_us, retention_us=gov.retention_us)
    assert item["intent_summary"] == "y" * (request_details.SUMMARY_CHARS - 1) + "\u2026"
    assert gov.request_details(request_id, "t1").to_dict()["intent_summary"] == text
