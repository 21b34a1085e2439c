"""A token granted to be claimed waits sealed in every store and is handed over exactly once, even
to claims racing from several threads (each with its own kernel on the shared store)."""

from __future__ import annotations

import threading
from typing import Any

from kernel.flows import ESCALATE_IR, dag_for

from irgov_policy.approvals import KeyRing
from irgov_policy.errors import ConflictError
from irgov_policy.kernel import Governance

CLAIMERS = 6


def test_one_claim_of_many_gets_the_token_and_the_gate_opens_with_it(store_url: str) -> None:
    key = KeyRing.generate("k1").to_text()
    settings: dict[str, Any] = {"environ": {}, "approval_store": store_url, "approval_key": key, "outbox": "memory:"}
    shared = store_url.startswith("memory:")  # one process's memory: the claimers share its kernel
    with Governance.from_config(**settings) as gov:
        decision = gov.validate(ESCALATE_IR, submitted_by="sam")
        request_id = gov.request_approval(decision, "rita").request.request_id
        assert gov.grant(request_id, "bob", "t1", deliver="claim").token is None
        sealed = gov.ledger.get_request(request_id)
        assert sealed is not None and sealed.sealed_token is not None
        kernels = [gov if shared else Governance.from_config(**settings) for _ in range(CLAIMERS)]
        barrier = threading.Barrier(CLAIMERS)
        tokens: list[str] = []
        refusals: list[str] = []

        def claim(kernel: Governance) -> None:
            barrier.wait()
            try:
                granted = kernel.claim_token(request_id, "t1", by="rita")
                assert granted.token is not None
                tokens.append(str(granted.token))
            except ConflictError as exc:
                refusals.append(str(exc))

        threads = [threading.Thread(target=claim, args=(k,)) for k in kernels]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        if not shared:
            for kernel in kernels:
                kernel.close()
        assert len(tokens) == 1 and len(refusals) == CLAIMERS - 1, (tokens, refusals)
        assert all("can no longer be claimed" in r or "was claimed by `rita`" in r for r in refusals)
        after = gov.ledger.get_request(request_id)
        assert after is not None and after.sealed_token is None and after.claimed_by == "rita"
        assert after.claimed_us is not None and after.delivery == "claim"
        clearance = gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), tokens[0], executed_by="runner")
        assert clearance.allowed, clearance.reasons
