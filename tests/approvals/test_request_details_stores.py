"""The details of an approval request live in the ledger of every backend: a second kernel on the
same store (another worker) renders the same request, steps and decision as the one that made it."""

from __future__ import annotations

from typing import Any

from kernel.flows import ESCALATE_IR, ir

from irgov_policy.approvals import KeyRing
from irgov_policy.kernel import Governance

HOSTILE = "<img src=x onerror=alert(1)></script>"


def _doc() -> dict[str, Any]:
    steps = [{"action": "dns.update_records", "provider": "dns.hetzner", "resource": f"zone:e{i}.example.com",
              "params": {"note": HOSTILE, "n": i}, "idempotency_key": f"k{i}"} for i in range(7)]
    return ir(ESCALATE_IR, intent_summary="renumber the zones", steps=steps)


def test_another_worker_renders_the_same_details(store_url: str) -> None:
    key = KeyRing.generate("k1").to_text()
    settings = {"environ": {}, "approval_store": store_url, "approval_key": key, "outbox": "memory:"}
    with Governance.from_config(**settings) as first:
        decision = first.validate(_doc(), submitted_by="sam")
        request_id = first.request_approval(decision, "rita").request.request_id
        mine = first.request_details(request_id, "t1", steps_offset=5, steps_limit=5).to_dict()
        if store_url.startswith("memory:"):
            other = dict(mine)  # one process's memory: there is no second worker to ask
        else:
            with Governance.from_config(**settings) as second:
                other = second.request_details(request_id, "t1", steps_offset=5, steps_limit=5).to_dict()
    for moving in ("age_seconds", "time_left_seconds"):
        mine.pop(moving), other.pop(moving)
    assert other == mine
    assert other["intent_summary"] == "renumber the zones" and other["submitted_by"] == ["sam"]
    steps = other["steps"]
    assert (steps["total"], steps["recorded"], steps["offset"], steps["next_offset"]) == (7, 7, 5, None)
    assert [s["index"] for s in steps["items"]] == [5, 6]
    assert HOSTILE in steps["items"][0]["params"]["text"]
    assert other["decision"]["packs"] and other["decision"]["high_risk_steps"]
