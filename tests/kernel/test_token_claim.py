"""The token never passes through a human: a grant made to be claimed seals it beside the request;
the requester (or a submitter) claims it once, and the executor's gate opens with it."""

from __future__ import annotations

import logging
import time

import pytest

from irgov_policy.approvals import KeyRing
from irgov_policy.approvals.sealing import seal_token, unseal_token
from irgov_policy.approvals.tokens import new_token
from irgov_policy.errors import ApprovalKeyError, ConflictError, NotClaimantError, NotFoundError
from irgov_policy.kernel import Governance

from .flows import ESCALATE_IR, dag_for


def _requested(gov: Governance) -> str:
    decision = gov.validate(ESCALATE_IR, submitted_by="sam")
    return gov.request_approval(decision, "rita").request.request_id


def test_the_approver_never_sees_the_token_and_the_requester_claims_it_once(
        gov: Governance, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    request_id = _requested(gov)
    granted = gov.grant(request_id, "bob", "t1", deliver="claim")
    assert granted.token is None and granted.to_dict()["token"] is None and "token=None" in repr(granted)
    shown = granted.to_dict()
    assert shown["token_delivery"] == "claim" and shown["claimed_by"] is None and shown["status"] == "pending"
    stored = gov.ledger.get_request(request_id)
    assert stored is not None and stored.sealed_token is not None and stored.sealed_token.startswith("seal1:k")
    assert stored.sealed_token not in repr(stored)
    assert "irgap_" not in stored.sealed_token  # sealed, not the token in clear
    assert gov.request_details(request_id, "t1").to_dict()["token_delivery"] == "claim"

    claimed = gov.claim_token(request_id, "t1", by="rita")
    token = claimed.token
    assert token is not None and token.startswith("irgap_")
    assert claimed.to_dict()["claimed_by"] == "rita" and claimed.to_dict()["claimed_at"]
    after = gov.ledger.get_request(request_id)
    assert after is not None and after.sealed_token is None and after.claimed_by == "rita"
    with pytest.raises(ConflictError, match=r"was claimed by `rita` at .*: a token is handed over once"):
        gov.claim_token(request_id, "t1", by="rita")
    with pytest.raises(ConflictError, match="was claimed by `rita`"):
        gov.claim_token(request_id, "t1", by="sam")

    clearance = gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="runner")
    assert clearance.allowed, clearance.reasons
    # Neither the token nor its sealed form was ever logged.
    assert token not in caplog.text and stored.sealed_token not in caplog.text and "seal1:" not in caplog.text


def test_who_may_claim(gov: Governance) -> None:
    request_id = _requested(gov)
    gov.grant(request_id, "bob", "t1", deliver="claim")
    with pytest.raises(NotClaimantError, match=f"`bob` neither requested approval request `{request_id}` nor "
                                               "submitted its ir: only they may claim its token"):
        gov.claim_token(request_id, "t1", by="bob")
    with pytest.raises(NotFoundError):
        gov.claim_token(request_id, "t2", by="rita")
    assert gov.claim_token(request_id, "t1", by="sam").token is not None  # the submitter may claim it too


def test_claims_refused_with_their_reason(gov: Governance) -> None:
    waiting = _requested(gov)
    with pytest.raises(ConflictError, match="is not granted yet: there is no token to claim"):
        gov.claim_token(waiting, "t1", by="rita")
    answered = gov.grant(waiting, "bob", "t1")
    assert answered.token is not None and answered.to_dict()["token_delivery"] == "response"
    with pytest.raises(ConflictError, match="was delivered in the answer to its grant: there is nothing to claim"):
        gov.claim_token(waiting, "t1", by="rita")

    revoked = _requested(gov)
    gov.grant(revoked, "bob", "t1", deliver="claim")
    gov.revoke(revoked, "t1", by="bob", reason="not now")
    after = gov.ledger.get_request(revoked)
    assert after is not None and after.sealed_token is None  # a revoke erases the sealed copy
    with pytest.raises(ConflictError, match="is revoked: there is no token to claim"):
        gov.claim_token(revoked, "t1", by="rita")

    expired = _requested(gov)
    gov.grant(expired, "bob", "t1", deliver="claim", ttl_seconds=0.05)
    time.sleep(0.1)
    with pytest.raises(ConflictError, match=f"the approval of request `{expired}` is expired: its token can no "
                                            "longer be used"):
        gov.claim_token(expired, "t1", by="rita")

    with pytest.raises(Exception, match="unknown delivery `email`"):
        gov.grant(_requested(gov), "bob", "t1", deliver="email")


def test_a_sealed_token_opens_only_for_its_request_and_with_a_held_key() -> None:
    old, new = KeyRing.generate("k1"), KeyRing.generate("k2")
    token = new_token()
    sealed = seal_token(old, token, request_id="areq_1", tenant_id="t1")
    assert unseal_token(old, sealed, request_id="areq_1", tenant_id="t1") == token
    rotated = KeyRing(new.current, [old.current])
    assert unseal_token(rotated, sealed, request_id="areq_1", tenant_id="t1") == token  # a retired key still opens
    with pytest.raises(ApprovalKeyError, match="does not open with key `k1`"):
        unseal_token(old, sealed, request_id="areq_2", tenant_id="t1")  # bound to its request
    with pytest.raises(ApprovalKeyError, match="does not open with key `k1`"):
        unseal_token(old, sealed, request_id="areq_1", tenant_id="t2")  # and to its tenant
    with pytest.raises(ApprovalKeyError, match="sealed with key `k1`, which the server no longer holds"):
        unseal_token(new, sealed, request_id="areq_1", tenant_id="t1")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(ApprovalKeyError, match="does not open"):
        unseal_token(old, tampered, request_id="areq_1", tenant_id="t1")
    with pytest.raises(ApprovalKeyError, match="not in a known format"):
        unseal_token(old, "plain", request_id="areq_1", tenant_id="t1")
    assert seal_token(old, token, request_id="areq_1", tenant_id="t1") != sealed  # a fresh nonce each time
