"""The kernel's flows: validation, approval requests and grants, and the execution gate."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from irgov_policy.errors import (
    ApprovalKeyError,
    ConflictError,
    NotEscalatedError,
    NotFoundError,
    SeparationOfDutiesError,
)
from irgov_policy.events import MemorySink
from irgov_policy.kernel import Governance

from .conftest import embedded
from .flows import ESCALATE_IR, PASS_IR, REJECT_IR, dag_for, ir


def escalate_and_grant(gov: Governance, doc: dict = ESCALATE_IR) -> tuple[str, str]:
    decision = gov.validate(doc, submitted_by="alice")
    assert decision.status == "ESCALATE"
    request = gov.request_approval(decision, "alice", reason="dns change")
    grant = gov.grant(request.request.request_id, "bob", decision.tenant_id)
    return request.request.request_id, str(grant.token)


def test_pass_runs_without_approval(gov: Governance, sink: MemorySink) -> None:
    clearance = gov.authorize_execution(PASS_IR, dag_for(PASS_IR), executed_by="runner")
    assert clearance.allowed, clearance.reasons
    assert clearance.status == "PASS" and not clearance.approval_required and clearance.approval is None
    assert gov.flush()
    assert sink.types() == ["ir.validated_pass", "ir.dag_diff_ok"]


def test_escalate_needs_a_token(gov: Governance) -> None:
    clearance = gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR))
    assert not clearance.allowed
    assert clearance.approval_required
    assert clearance.reasons == ("the ir needs an approval and no approval token was given",)


def test_full_flow_then_replay_refused(gov: Governance, sink: MemorySink) -> None:
    request_id, token = escalate_and_grant(gov)
    first = gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="runner")
    assert first.allowed, first.reasons
    assert first.approval is not None and first.approval.success
    assert gov.get_request(request_id, "t1").status == "consumed"
    replay = gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="runner")
    assert not replay.allowed
    assert replay.reasons == ("the approval token was refused: `already_consumed`",)
    assert gov.flush()
    types = sink.types()
    assert types.count("ir.approval_consumed") == 1
    assert "ir.approval_created" in types and "ir.approval_invalid" in types


def test_token_for_another_ir_is_refused(gov: Governance) -> None:
    _, token = escalate_and_grant(gov)
    other = ir(ESCALATE_IR, request_id="req-other")
    assert gov.validate(other).status == "ESCALATE"
    clearance = gov.authorize_execution(other, dag_for(other), token)
    assert not clearance.allowed
    assert clearance.reasons == ("the approval token was refused: `ir_hash_mismatch`",)


def test_token_for_another_tenant_is_refused(gov: Governance) -> None:
    _, token = escalate_and_grant(gov)
    other = ir(ESCALATE_IR, tenant_id="t2")
    clearance = gov.authorize_execution(other, dag_for(other), token)
    assert not clearance.allowed
    assert clearance.approval is not None and not clearance.approval.success
    # the original approval is still usable by its own tenant and IR
    assert gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token).allowed


def test_tampered_dag_is_refused_and_keeps_the_approval(gov: Governance) -> None:
    _, token = escalate_and_grant(gov)
    tampered = dag_for(ESCALATE_IR)
    tampered[0]["ir_step_hash"] = dag_for(PASS_IR)[0]["ir_step_hash"]
    clearance = gov.authorize_execution(ESCALATE_IR, tampered, token)
    assert not clearance.allowed
    assert clearance.audit is not None and not clearance.audit.success
    assert any(r.startswith("dag: step `0`") for r in clearance.reasons)
    assert "the approval token was not consumed because the execution is refused" in clearance.reasons
    extra = [*dag_for(ESCALATE_IR), {"ir_step_id": "9", "ir_step_hash": tampered[0]["ir_step_hash"]}]
    assert not gov.authorize_execution(ESCALATE_IR, extra, token).allowed
    assert gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token).allowed


def test_reject_is_never_authorized(gov: Governance) -> None:
    decision = gov.validate(REJECT_IR, submitted_by="alice")
    assert decision.status == "REJECT"
    with pytest.raises(NotEscalatedError, match="decided `REJECT`"):
        gov.request_approval(decision, "alice")
    clearance = gov.authorize_execution(REJECT_IR, dag_for(REJECT_IR), None)
    assert not clearance.allowed
    assert clearance.reasons[0].startswith("the ir is rejected: UNKNOWN_ACTION")


def test_invalid_ir_is_refused_with_its_pointer(gov: Governance) -> None:
    bad = ir(ESCALATE_IR, steps=[{"action": "dns.update_records"}])
    clearance = gov.authorize_execution(bad, [])
    assert not clearance.allowed
    assert clearance.status == "REJECT"
    assert any("INVALID_IR" in r for r in clearance.reasons)
    assert any(r.startswith("the dag cannot be audited") for r in clearance.reasons)


def test_malformed_inputs_never_raise(gov: Governance) -> None:
    for source, dag in [(b"{not json", []), ("[]", []), ({"tenant_id": 5}, None), (ESCALATE_IR, "nodes")]:
        clearance = gov.authorize_execution(source, dag)  # type: ignore[arg-type]
        assert not clearance.allowed and clearance.reasons


def test_request_refuses_pass_and_unknown_hashes(gov: Governance) -> None:
    passed = gov.validate(PASS_IR)
    with pytest.raises(NotEscalatedError, match="decided `PASS`"):
        gov.request_approval(passed, "alice")
    with pytest.raises(NotEscalatedError, match="no decision on ir"):
        gov.request_approval("sha256:" + "ab" * 32, "alice", tenant_id="t1")
    escalated = gov.validate(ESCALATE_IR)
    with pytest.raises(NotEscalatedError, match="no decision on ir"):
        gov.request_approval(escalated.ir_hash, "alice", tenant_id="t2")


def test_separation_of_duties(gov: Governance) -> None:
    decision = gov.validate(ESCALATE_IR, submitted_by="carol")
    request = gov.request_approval(decision, "alice")
    request_id = request.request.request_id
    with pytest.raises(SeparationOfDutiesError, match="requested"):
        gov.grant(request_id, "alice", "t1")
    with pytest.raises(SeparationOfDutiesError, match="submitted the ir"):
        gov.grant(request_id, "carol", "t1")
    grant = gov.grant(request_id, "bob", "t1")
    assert grant.request.status == "pending"
    assert str(grant.token) not in repr(grant) and str(grant.token) not in repr([grant])
    assert repr(grant) == f"Grant(request_id={request_id!r}, token=<redacted>)"
    with pytest.raises(ConflictError, match="already granted"):
        gov.grant(request_id, "dave", "t1")


def test_separation_of_duties_can_be_disabled(tmp_path: Path) -> None:
    with Governance.from_config(environ={}, separation_of_duties=False, **embedded(tmp_path)) as gov:
        decision = gov.validate(ESCALATE_IR, submitted_by="alice")
        request = gov.request_approval(decision, "alice")
        assert gov.grant(request.request.request_id, "alice", "t1").token


def test_other_tenant_sees_nothing(gov: Governance) -> None:
    request_id, _ = escalate_and_grant(gov)
    for call in (lambda: gov.get_request(request_id, "t2"), lambda: gov.grant(request_id, "bob", "t2"),
                 lambda: gov.revoke(request_id, "t2", by="bob"), lambda: gov.get_request("areq_nope", "t1")):
        with pytest.raises(NotFoundError, match="does not exist"):
            call()


def test_revoke_before_and_after_grant(gov: Governance) -> None:
    decision = gov.validate(ESCALATE_IR, submitted_by="alice")
    open_request = gov.request_approval(decision, "alice").request.request_id
    assert gov.revoke(open_request, "t1", by="bob", reason="not now").status == "revoked"
    with pytest.raises(ConflictError):
        gov.grant(open_request, "bob", "t1")
    granted, token = escalate_and_grant(gov)
    view = gov.revoke(granted, "t1", by="bob")
    assert view.status == "revoked" and view.approval is not None and view.approval.status.value == "revoked"
    clearance = gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token)
    assert clearance.reasons == ("the approval token was refused: `revoked`",)


def test_list_by_status_and_cursor(gov: Governance) -> None:
    decision = gov.validate(ESCALATE_IR, submitted_by="alice")
    ids = [gov.request_approval(decision, "alice").request.request_id for _ in range(5)]
    gov.grant(ids[0], "bob", "t1")
    page, cursor = gov.list_requests("t1", limit=2)
    seen = [v.request.request_id for v in page]
    while cursor is not None:
        page, cursor = gov.list_requests("t1", limit=2, cursor=cursor)
        seen += [v.request.request_id for v in page]
    assert seen == list(reversed(ids))
    pending, _ = gov.list_requests("t1", status="pending")
    assert [v.request.request_id for v in pending] == [ids[0]]
    requested, _ = gov.list_requests("t1", status="requested")
    assert len(requested) == 4
    assert gov.list_requests("t2")[0] == []


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    with Governance.from_config(environ={}, **embedded(tmp_path)) as gov:
        _, token = escalate_and_grant(gov)
    key_file = tmp_path / "state" / "approval.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    content = key_file.read_text()
    # a restart reuses the key: the token granted before still verifies
    with Governance.from_config(environ={}, **embedded(tmp_path)) as gov:
        assert gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token).allowed
    assert key_file.read_text() == content


def test_shared_store_without_a_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ApprovalKeyError, match="same key on every host"):
        Governance.from_config(environ={}, approval_store="redis://127.0.0.1:6379/14",
                               outbox=f"sqlite:///{tmp_path}/o.db")


def test_async_flow(tmp_path: Path) -> None:
    async def flow() -> None:
        async with Governance.from_config(environ={}, **embedded(tmp_path)) as gov:
            decision = await gov.avalidate(ESCALATE_IR, submitted_by="alice")
            request = await gov.arequest_approval(decision, "alice")
            grant = await gov.agrant(request.request.request_id, "bob", "t1")
            clearance = await gov.aauthorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), str(grant.token))
            assert clearance.allowed
            assert (await gov.aget_request(request.request.request_id, "t1")).status == "consumed"

    asyncio.run(flow())


def test_redis_backed_kernel_shares_state_between_instances(tmp_path: Path, redis_url: str,
                                                            redis_prefix: str, redis_client: object) -> None:
    from irgov_policy.approvals import KeyRing

    key = KeyRing.generate("k1").to_text()
    store = f"{redis_url}?prefix={redis_prefix}"
    first = Governance.from_config(environ={}, approval_store=store, approval_key=key,
                                   outbox=f"sqlite:///{tmp_path}/a.db")
    second = Governance.from_config(environ={}, approval_store=store, approval_key=key,
                                    outbox=f"sqlite:///{tmp_path}/b.db")
    try:
        decision = first.validate(ESCALATE_IR, submitted_by="alice")
        request = first.request_approval(decision, "alice")
        grant = second.grant(request.request.request_id, "bob", "t1")
        assert first.get_request(request.request.request_id, "t1").status == "pending"
        assert second.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), str(grant.token)).allowed
        assert first.get_request(request.request.request_id, "t1").status == "consumed"
        assert not first.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), str(grant.token)).allowed
    finally:
        first.close()
        second.close()


def test_grant_sync_and_async(gov: Governance) -> None:
    decision = gov.validate(ESCALATE_IR, submitted_by="alice")
    first = gov.request_approval(decision, "alice")
    grant = gov.grant(first.request.request_id, "bob", "t1", ttl_seconds=60)
    assert grant.request.status == "pending" and grant.request.approval is not None
    assert grant.request.approval.ttl_seconds == 60
    with pytest.raises(SeparationOfDutiesError):
        gov.grant(gov.request_approval(decision, "carol").request.request_id, "alice", "t1")
    second = gov.request_approval(decision, "alice")
    again = asyncio.run(gov.agrant(second.request.request_id, "bob", "t1"))
    assert str(again.token) != str(grant.token)
    assert gov.consume(str(again.token), tenant_id="t1", ir_hash=decision.ir_hash).success


def test_state_that_cannot_be_created_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ApprovalKeyError, match=r"cannot create the approval key file `.*a-file/state/approval\.key`"):
        Governance.from_config(environ={}, approval_store=f"sqlite:///{blocker}/state/approvals.db",
                               outbox=f"sqlite:///{tmp_path}/outbox.db")
    from irgov_policy.approvals import SQLiteApprovalStore
    from irgov_policy.errors import StoreError

    with pytest.raises(StoreError, match="cannot create the directory of"):
        SQLiteApprovalStore(blocker / "ledger.db")


def test_serve_refuses_unusable_state_without_a_traceback(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from irgov_policy.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(main, ["serve", "--port", "0"], env={
        "IRGOV_APPROVAL_STORE": f"sqlite:///{blocker}/approvals.db", "IRGOV_OUTBOX": f"sqlite:///{tmp_path}/o.db"})
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert "irgov: error: cannot start: cannot create the approval key file" in result.output


def test_a_dag_digest_outside_the_allowed_algorithms_is_refused(tmp_path: Path) -> None:
    from irgov_policy.audit import dag_nodes
    from irgov_policy.model import parse_ir

    blake3_dag = dag_nodes(parse_ir(PASS_IR), "blake3")
    with Governance.from_config(environ={}, **embedded(tmp_path)) as both:
        assert both.authorize_execution(PASS_IR, blake3_dag).allowed
    with Governance.from_config(environ={}, allowed_algorithms=["sha256"], **embedded(tmp_path)) as strict:
        clearance = strict.authorize_execution(PASS_IR, blake3_dag)
        assert not clearance.allowed
        assert any("`blake3` is not allowed" in r for r in clearance.reasons), clearance.reasons


@pytest.mark.parametrize(("settings", "message"), [
    ({"hash_algorithm": "blake3", "allowed_algorithms": ["sha256"]}, "`hash_algorithm` `blake3` is not one of"),
    ({"allowed_algorithms": ["sha256", "sha1"]}, "unknown hash algorithm `sha1`"),
    ({"allowed_algorithms": []}, "`hash_algorithm` `sha256` is not one of"),
    ({"hash_algorithm": "md5"}, "`hash_algorithm` names unknown hash algorithm `md5`"),
])
def test_hash_settings_that_would_refuse_every_approval_are_refused(tmp_path: Path, settings: dict,
                                                                    message: str) -> None:
    from irgov_policy.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        Governance.from_config(environ={}, **embedded(tmp_path, **settings))


def test_an_unreachable_store_refuses_without_naming_it(tmp_path: Path) -> None:
    import socket

    from irgov_policy.approvals import KeyRing
    from irgov_policy.approvals.tokens import new_token

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gov = Governance.from_config(environ={}, approval_store=f"redis://127.0.0.1:{port}/15",
                                 approval_key=KeyRing.generate("k1").to_text(), outbox=f"sqlite:///{tmp_path}/o.db")
    try:
        clearance = gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), str(new_token()))
        assert not clearance.allowed
        assert clearance.reasons == ("authorization failed: the approval store or the ledger does not answer",)
        bad_principal = gov.authorize_execution(PASS_IR, dag_for(PASS_IR), executed_by="\x00")
        assert bad_principal.allowed  # a PASS consumes nothing, so the principal is not checked
        refused = gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), str(new_token()), executed_by="\x00")
        assert refused.reasons == ("authorization failed: `consumed_by` must not contain control characters",)
    finally:
        gov.close()
