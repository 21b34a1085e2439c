"""A DAG node that claims the right hash but will run something else is refused by every face
(`irgov diff`, `POST /diff-audit`, `authorize_execution`), and the approval survives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from irgov_policy.cli import main
from irgov_policy.http import create_app
from irgov_policy.kernel import Governance

from .conftest import embedded
from .flows import ESCALATE_IR, dag_for

SUBSTITUTIONS = [
    ("action", "infra.destroy"),
    ("resource", "cluster:prod-eu"),
    ("params", {"records": [{"type": "A", "name": "www", "value": "198.51.100.66"}]}),
]


def _substituted(field: str, value: Any) -> list[dict[str, Any]]:
    dag = dag_for(ESCALATE_IR)
    dag[0][field] = value  # the claimed `ir_step_hash` stays the IR step's
    return dag


@pytest.mark.parametrize("field, value", SUBSTITUTIONS)
def test_the_gate_refuses_substituted_content_and_keeps_the_approval(gov: Governance, field: str,
                                                                      value: Any) -> None:
    decision = gov.validate(ESCALATE_IR, submitted_by="alice")
    request = gov.request_approval(decision, "alice")
    token = str(gov.grant(request.request.request_id, "bob", decision.tenant_id).token)
    clearance = gov.authorize_execution(ESCALATE_IR, _substituted(field, value), token)
    assert not clearance.allowed
    assert clearance.audit is not None and [c.differing_fields for c in clearance.audit.content_mismatches] == [
        (field,)]
    assert "the approval token was not consumed because the execution is refused" in clearance.reasons
    assert gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token).allowed


def test_the_gate_requires_node_content_by_default(gov: Governance) -> None:
    claims_only = [{"ir_step_id": n["ir_step_id"], "ir_step_hash": n["ir_step_hash"]} for n in dag_for(ESCALATE_IR)]
    clearance = gov.authorize_execution(ESCALATE_IR, claims_only)
    assert not clearance.allowed
    assert any("carries only a claimed hash" in r for r in clearance.reasons)


def test_require_node_content_can_be_turned_off(tmp_path: Path) -> None:
    claims_only = [{"ir_step_id": n["ir_step_id"], "ir_step_hash": n["ir_step_hash"]}
                   for n in dag_for(ESCALATE_IR)]
    with Governance.from_config(environ={}, require_node_content=False, **embedded(tmp_path)) as gov:
        reasons = gov.authorize_execution(ESCALATE_IR, claims_only).reasons
    assert reasons == ("the ir needs an approval and no approval token was given",)


@pytest.mark.parametrize("field, value", SUBSTITUTIONS)
def test_irgov_diff_refuses_substituted_content(tmp_path: Path, field: str, value: Any) -> None:
    (tmp_path / "ir.json").write_text(json.dumps(ESCALATE_IR))
    (tmp_path / "dag.json").write_text(json.dumps(_substituted(field, value)))
    result = CliRunner().invoke(main, ["diff", str(tmp_path / "ir.json"), str(tmp_path / "dag.json")],
                                env={"IRGOV_OUTBOX": f"sqlite:///{tmp_path}/outbox.db"})
    assert result.exit_code == 1, result.output
    assert f"differs in `{field}`" in result.output


def test_irgov_diff_can_require_node_content(tmp_path: Path) -> None:
    (tmp_path / "ir.json").write_text(json.dumps(ESCALATE_IR))
    claims = [{"ir_step_id": n["ir_step_id"], "ir_step_hash": n["ir_step_hash"]} for n in dag_for(ESCALATE_IR)]
    (tmp_path / "dag.json").write_text(json.dumps(claims))
    args = ["diff", str(tmp_path / "ir.json"), str(tmp_path / "dag.json")]
    env = {"IRGOV_OUTBOX": f"sqlite:///{tmp_path}/outbox.db"}
    assert CliRunner().invoke(main, args, env=env).exit_code == 0
    refused = CliRunner().invoke(main, [*args, "--require-node-content"], env=env)
    assert refused.exit_code == 1 and "carries only a claimed hash" in refused.output


@pytest.mark.parametrize("field, value", SUBSTITUTIONS)
def test_diff_audit_endpoint_refuses_substituted_content(tmp_path: Path, field: str, value: Any) -> None:
    key = "auditor-key-000000000001"
    with Governance.from_config(environ={}, api_keys=[f"auditor:submitter:*:{key}"], **embedded(tmp_path)) as gov, \
            TestClient(create_app(governance=gov)) as client:
        body = client.post("/diff-audit", json={"ir": ESCALATE_IR, "dag": _substituted(field, value)},
                           headers={"Authorization": f"Bearer {key}"}).json()
    assert body["success"] is False and body["hash_mismatches"] == []
    assert [c["differing_fields"] for c in body["content_mismatches"]] == [[field]]
