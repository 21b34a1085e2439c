"""The raw token (and its digest) never appears in a log line, an event, an exception or a repr,
over a full flow with DEBUG logging on every logger."""

from __future__ import annotations

import logging

import pytest

from irgov_policy.errors import IrgovError

from .helpers import H1, H2, Clock, make_service


def test_token_never_leaks(store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # root: the package, redis-py, sqlite3, everything
    clock = Clock()
    service, sink, bus = make_service(store_url, clock=clock, max_mismatches=3)
    texts: list[str] = []
    secrets: list[str] = []
    try:
        approval, token = service.create("acme", H1, created_by="alice", reason="deploy")
        other, token2 = service.create("acme", H1, ttl_seconds=5)
        third, token3 = service.create("acme", H1)
        keyring = service._keyring()
        for t in (token, token2, token3):
            secrets += [str(t)] + [d for _, d in keyring.candidate_digests(t)]
        results = [
            service.consume(token, tenant_id="evil", ir_hash=H1, consumed_by="mallory"),
            service.consume(token, tenant_id="acme", ir_hash=H2),
            service.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob"),
            service.consume(token, tenant_id="acme", ir_hash=H1),
            service.consume(token3, tenant_id="acme", ir_hash=H2),
            service.consume(token3, tenant_id="acme", ir_hash=H2),
            service.consume(token3, tenant_id="acme", ir_hash=H2),  # revokes
        ]
        clock.advance(10)
        results.append(service.consume(token2, tenant_id="acme", ir_hash=H1))
        for bad_call in (lambda: service.consume(token, tenant_id="", ir_hash=H1),
                         lambda: service.consume(token, tenant_id="acme", ir_hash=str(token)),
                         lambda: service.create("acme", str(token))):
            with pytest.raises(IrgovError) as info:
                bad_call()
            texts.append(str(info.value) + repr(info.value))
        assert [r.success for r in results].count(True) == 1
        texts += [repr(r) for r in results]
        texts += [repr(service.get(a.approval_id, "acme")) for a in (approval, other, third)]
        texts += [repr(service.list("acme")), repr(service), repr(service.store), repr((approval, token))]
        service.sweep()
        clock.advance(86400)
        service.purge(0)
    finally:
        bus.close()
        service.store.close()
    texts += [e.to_json() for e in sink.events]
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert len(sink.events) >= 10 and caplog.records
    blob = "\n".join(texts)
    # the digest check is scoped to our outputs; the secret check covers everything
    leaked = [s[:12] for s in secrets if s in blob]
    assert leaked == []
    # the exception for a token passed as an ir hash did not echo it
    assert "irgap_" not in blob.replace("ApprovalToken('irgap_…<redacted>')", "")
