"""`GET /metrics`: who may read it, and that the counters move with what the kernel does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kernel.flows import ESCALATE_IR, PASS_IR, dag_for

from irgov_policy.http import create_app
from irgov_policy.kernel import Governance

from .conftest import bearer, settings

pytest.importorskip("prometheus_client", reason="prometheus-client is part of the `http` extra")


def _value(text: str, name: str, **labels: str) -> float:
    """The sample `name{labels}` (labels in any order; others allowed), 0 when absent."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_metrics_need_the_admin_role(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401
    refused = client.get("/metrics", headers=bearer("alice"))
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    tenant_admin = client.get("/metrics", headers=bearer("eve"))  # an admin of tenant t2 only
    assert tenant_admin.status_code == 403 and "every tenant" in tenant_admin.json()["detail"]
    answered = client.get("/metrics", headers=bearer("root"))
    assert answered.status_code == 200
    assert answered.headers["content-type"].startswith("text/plain")
    assert "# TYPE irgov_decisions_total counter" in answered.text


@pytest.fixture
def public_client(tmp_path: Path) -> Iterator[TestClient]:
    gov = Governance.from_config(environ={}, **settings(tmp_path, metrics_public=True))
    with TestClient(create_app(governance=gov)) as test_client:
        yield test_client
    gov.close()


def test_metrics_public_by_setting_and_nothing_else_opens(public_client: TestClient) -> None:
    assert public_client.get("/metrics").status_code == 200
    assert public_client.get("/packs").status_code == 401


@pytest.fixture
def sink_client(tmp_path: Path) -> Iterator[TestClient]:
    gov = Governance.from_config(environ={}, **settings(tmp_path, event_sinks=[f"jsonl://{tmp_path}/events.jsonl"]))
    with TestClient(create_app(governance=gov)) as test_client:
        yield test_client
    gov.close()


def test_counters_follow_the_flow(sink_client: TestClient) -> None:
    client = sink_client
    before = client.get("/metrics", headers=bearer("root")).text
    digest = client.get("/packs", headers=bearer("root")).json()["digest"]
    assert client.post("/validate", json=PASS_IR, headers=bearer("alice")).json()["status"] == "PASS"
    decision = client.post("/validate", json=ESCALATE_IR, headers=bearer("alice")).json()
    request_id = client.post("/approvals", json={"tenant_id": "t1", "ir_hash": decision["ir_hash"]},
                             headers=bearer("alice")).json()["request_id"]
    token = client.post(f"/approvals/{request_id}/grant", headers=bearer("bob")).json()["token"]
    body = {"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR), "approval_token": token}
    assert client.post("/authorize", json=body, headers=bearer("alice")).json()["allowed"] is True
    assert client.post("/authorize", json=body, headers=bearer("alice")).json()["allowed"] is False
    after = client.get("/metrics", headers=bearer("root")).text

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("irgov_decisions_total", status="PASS", pack_digest=digest) == 1
    # the two /authorize calls decide the IR again
    assert moved("irgov_decisions_total", status="ESCALATE", pack_digest=digest) == 3
    assert moved("irgov_decision_seconds_count") == 4
    assert moved("irgov_approvals_total", state="requested") == 1
    assert moved("irgov_approvals_total", state="granted") == 1
    assert moved("irgov_approvals_total", state="consumed") == 1
    assert moved("irgov_consume_failures_total", reason="already_consumed") == 1
    assert moved("irgov_time_to_approve_seconds_count") == 1
    for gauge in ("irgov_outbox_pending", "irgov_outbox_oldest_pending_seconds", "irgov_outbox_failing"):
        assert re.search(rf'^{gauge}{{sink="jsonl:[^"]*"}} \d', after, re.MULTILINE), gauge


def test_reload_results_are_counted(client: TestClient) -> None:
    before = client.get("/metrics", headers=bearer("root")).text
    assert client.post("/packs/reload", headers=bearer("root")).status_code == 200
    after = client.get("/metrics", headers=bearer("root")).text
    assert _value(after, "irgov_pack_reloads_total", result="ok") - _value(
        before, "irgov_pack_reloads_total", result="ok") == 1


def test_the_starter_alerts_name_exported_metrics(sink_client: TestClient) -> None:
    import yaml

    docs = Path(__file__).resolve().parents[2] / "docs"
    rules_text = (docs / "prometheus-alerts.yml").read_text("utf-8")
    page = (docs / "deployment.md").read_text("utf-8")
    shown = re.search(r"```yml\n(.*?)```", page, re.DOTALL)
    assert shown is not None and shown.group(1) in rules_text, "docs/deployment.md shows other alerts"
    rules = yaml.safe_load(rules_text)["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {"IrgovOutboxBacklogGrowing", "IrgovConsumeFailuresSpiking",
                                           "IrgovPacksFailingToReload"}
    # a scrape after some traffic, so every labelled family has a sample
    sink_client.post("/validate", json=PASS_IR, headers=bearer("alice"))
    sink_client.post("/approvals/consume", json={"tenant_id": "t1", "ir_hash": "sha256:" + "0" * 64,
                                                 "token": "not-a-token"}, headers=bearer("alice"))
    sink_client.post("/packs/reload", headers=bearer("root"))
    text = sink_client.get("/metrics", headers=bearer("root")).text
    families = set(re.findall(r"^# TYPE (\w+) ", text, re.MULTILINE))
    for rule in rules:
        for name in re.findall(r"\birgov_\w+", rule["expr"]):
            assert name in families or re.sub(r"_(bucket|count|sum)$", "", name) in families, (rule["alert"], name)
