"""The contract every store meets: the same calls give the same answers on memory, SQLite and Redis."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from irgov_policy.approvals import ApprovalService, ApprovalStatus, ConsumeReason, KeyRing, open_store
from irgov_policy.errors import ApprovalError, ApprovalKeyError, DigestError, InvalidTTLError
from irgov_policy.events import MemorySink
from irgov_policy.events.sources import source_from_url

from .helpers import H1, H2, Clock, assert_events_valid, make_service


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def env(store_url: str, clock: Clock) -> Iterator[tuple[ApprovalService, MemorySink]]:
    service, sink, bus = make_service(store_url, clock=clock)
    yield service, sink
    bus.close()
    service.store.close()


def test_single_use(env: tuple[ApprovalService, MemorySink]) -> None:
    service, sink = env
    approval, token = service.create("acme", H1, created_by="alice")
    assert approval.status is ApprovalStatus.PENDING
    first = service.consume(token, tenant_id="acme", ir_hash=H1, consumed_by="bob")
    assert (first.success, first.status, first.reason, first.approval_id) == (
        True, ApprovalStatus.CONSUMED, None, approval.approval_id)
    second = service.consume(token, tenant_id="acme", ir_hash=H1)
    assert (second.success, second.status, second.reason) == (
        False, ApprovalStatus.CONSUMED, ConsumeReason.ALREADY_CONSUMED)
    got = service.get(approval.approval_id, "acme")
    assert got is not None and got.status is ApprovalStatus.CONSUMED and got.consumed_by == "bob"
    assert sink.types() == ["ir.approval_created", "ir.approval_consumed", "ir.approval_invalid"]
    assert sink.events[2].payload["reason"] == "already_consumed"
    assert_events_valid(sink)


def test_expiry_is_exactly_the_ttl_in_utc(env: tuple[ApprovalService, MemorySink]) -> None:
    service, _ = env
    for ttl in (1, 0.5, 3600, 7 * 86400):
        approval, _token = service.create("acme", H1, ttl_seconds=ttl)
        assert approval.expires_at - approval.created_at == timedelta(seconds=ttl)
        assert approval.created_at.utcoffset() == timedelta(0)
        stored = service.get(approval.approval_id, "acme")
        assert stored is not None and stored.ttl_seconds == ttl and stored.expires_at == approval.expires_at
    default, _ = service.create("acme", H1)
    assert default.ttl_seconds == 3600


@pytest.mark.parametrize("ttl", [0, 0.0, -1, -0.5, float("nan"), float("inf"), -float("inf"), True, False,
                                 "60", None.__class__, 7 * 86400 + 1, 1e-7])
def test_bad_ttls_are_refused_not_coerced(env: tuple[ApprovalService, MemorySink], ttl: Any) -> None:
    service, sink = env
    with pytest.raises(InvalidTTLError):
        service.create("acme", H1, ttl_seconds=ttl)
    assert sink.events == []
    assert service.list("acme").items == []


def test_boundary_just_before_and_at_expiry(env: tuple[ApprovalService, MemorySink], clock: Clock) -> None:
    service, sink = env
    _, early = service.create("acme", H1, ttl_seconds=10)
    _, late = service.create("acme", H1, ttl_seconds=10)
    clock.advance(10 - 1e-6)  # one microsecond before expires_at
    assert service.consume(early, tenant_id="acme", ir_hash=H1).success
    clock.advance(1e-6)  # exactly expires_at: expired
    result = service.consume(late, tenant_id="acme", ir_hash=H1)
    assert (result.success, result.status, result.reason) == (False, ApprovalStatus.EXPIRED, ConsumeReason.EXPIRED)
    assert [e.type for e in sink.events[-2:]] == ["ir.approval_expired", "ir.approval_invalid"]
    assert_events_valid(sink)


def test_replay_after_expiry_still_reports_consumed(env: tuple[ApprovalService, MemorySink], clock: Clock) -> None:
    """Defect 7 of the original: a replay after expiry rewrote consumed into expired."""
    service, _ = env
    approval, token = service.create("acme", H1, ttl_seconds=60)
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    clock.advance(3600)
    result = service.consume(token, tenant_id="acme", ir_hash=H1)
    assert (result.status, result.reason) == (ApprovalStatus.CONSUMED, ConsumeReason.ALREADY_CONSUMED)
    assert service.sweep() == 0
    got = service.get(approval.approval_id, "acme")
    assert got is not None and got.status is ApprovalStatus.CONSUMED


def test_another_tenant_learns_nothing(env: tuple[ApprovalService, MemorySink]) -> None:
    service, sink = env
    approval, token = service.create("acme", H1)
    result = service.consume(token, tenant_id="evil", ir_hash=H1, consumed_by="mallory")
    unknown = service.consume("irgap_" + "x" * 49, tenant_id="evil", ir_hash=H1)
    assert result == unknown  # indistinguishable from an unknown token
    assert (result.success, result.status, result.reason, result.approval_id) == (
        False, None, ConsumeReason.TOKEN_NOT_FOUND, None)
    # the audit trail records the real reason, under the owning tenant
    event = sink.of_type("ir.approval_invalid")[0]
    assert event.payload["reason"] == "tenant_mismatch"
    assert event.tenant_id == "acme" and event.payload["attempted_tenant_id"] == "evil"
    assert event.payload["approval_id"] == approval.approval_id
    assert service.get(approval.approval_id, "evil") is None
    assert service.revoke(approval.approval_id, "evil") is None
    assert service.list("evil").items == []
    # the approval is still usable by its tenant
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    assert_events_valid(sink)


def test_ir_hash_mismatch(env: tuple[ApprovalService, MemorySink]) -> None:
    service, sink = env
    approval, token = service.create("acme", H1)
    result = service.consume(token, tenant_id="acme", ir_hash=H2)
    assert (result.success, result.status, result.reason, result.approval_id) == (
        False, ApprovalStatus.PENDING, ConsumeReason.IR_HASH_MISMATCH, approval.approval_id)
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    assert_events_valid(sink)


def test_mismatches_revoke_the_approval(env: tuple[ApprovalService, MemorySink]) -> None:
    service, sink = env
    approval, token = service.create("acme", H1)
    assert service.consume(token, tenant_id="acme", ir_hash=H2).status is ApprovalStatus.PENDING
    assert service.consume(token, tenant_id="other", ir_hash=H1).reason is ConsumeReason.TOKEN_NOT_FOUND
    third = service.consume(token, tenant_id="acme", ir_hash=H2)
    assert (third.status, third.reason) == (ApprovalStatus.REVOKED, ConsumeReason.IR_HASH_MISMATCH)
    assert third.status is ApprovalStatus.REVOKED
    right = service.consume(token, tenant_id="acme", ir_hash=H1)
    assert (right.success, right.reason) == (False, ConsumeReason.REVOKED)
    got = service.get(approval.approval_id, "acme")
    assert got is not None and got.revoke_reason == "too_many_mismatches" and got.mismatches == 3
    assert sink.of_type("ir.approval_invalid")[2].payload.get("revoked") is True


def test_malformed_tokens_are_not_found(env: tuple[ApprovalService, MemorySink]) -> None:
    service, _ = env
    _, token = service.create("acme", H1)
    typo = token[:-1] + ("A" if token[-1] != "A" else "B")
    i = next(i for i in range(10, 40) if token[i] != token[i + 1])  # a swap that changes the token
    swapped = token[:i] + token[i + 1] + token[i] + token[i + 2:]
    for bad in (typo, swapped, token.upper(), token + "x", "", "irgap_", 42, None):
        result = service.consume(bad, tenant_id="acme", ir_hash=H1)  # type: ignore[arg-type]
        assert (result.success, result.reason) == (False, ConsumeReason.TOKEN_NOT_FOUND), bad
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success


def test_bad_arguments_raise_clear_errors(env: tuple[ApprovalService, MemorySink]) -> None:
    service, _ = env
    with pytest.raises(DigestError):
        service.create("acme", "abc")
    with pytest.raises(DigestError):
        service.create("acme", "md5:" + "0" * 32)
    with pytest.raises(ApprovalError, match="tenant_id"):
        service.create("", H1)
    _, token = service.create("acme", H1)
    with pytest.raises(DigestError):
        service.consume(token, tenant_id="acme", ir_hash="SHA256:" + "1" * 64)
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    with pytest.raises(ApprovalError, match="cursor"):
        service.list("acme", cursor="nope")
    with pytest.raises(ApprovalError, match="limit"):
        service.list("acme", limit=0)


def test_revoke(env: tuple[ApprovalService, MemorySink], clock: Clock) -> None:
    service, _ = env
    approval, token = service.create("acme", H1)
    revoked = service.revoke(approval.approval_id, "acme", by="carol", reason="changed my mind")
    assert revoked is not None and revoked.status is ApprovalStatus.REVOKED and revoked.revoked_by == "carol"
    result = service.consume(token, tenant_id="acme", ir_hash=H1)
    assert (result.success, result.status, result.reason) == (False, ApprovalStatus.REVOKED, ConsumeReason.REVOKED)
    clock.advance(7200)
    again = service.revoke(approval.approval_id, "acme")
    assert again is not None and again.status is ApprovalStatus.REVOKED
    # a consumed approval stays consumed
    done, token2 = service.create("acme", H1)
    assert service.consume(token2, tenant_id="acme", ir_hash=H1).success
    after = service.revoke(done.approval_id, "acme")
    assert after is not None and after.status is ApprovalStatus.CONSUMED
    assert service.revoke("appr_" + "0" * 32, "acme") is None


def test_list_newest_first_paginated(env: tuple[ApprovalService, MemorySink], clock: Clock) -> None:
    service, _ = env
    ids = []
    for _ in range(7):
        approval, _token = service.create("acme", H1, ttl_seconds=100)
        ids.append(approval.approval_id)
        clock.advance(1)
    service.create("other", H1)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = service.list("acme", limit=3, cursor=cursor)
        pages += 1
        seen += [a.approval_id for a in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(ids)) and pages == 3
    # same created_at: still a total, stable order across pages
    frozen = [service.create("tie", H1)[0].approval_id for _ in range(5)]
    first = service.list("tie", limit=2)
    rest = service.list("tie", limit=10, cursor=first.next_cursor)
    listed = [a.approval_id for a in first.items + rest.items]
    assert sorted(listed) == sorted(frozen) and len(set(listed)) == 5


def test_list_filters_by_effective_status(env: tuple[ApprovalService, MemorySink], clock: Clock) -> None:
    service, _ = env
    a, ta = service.create("acme", H1, ttl_seconds=10)
    b, _tb = service.create("acme", H1, ttl_seconds=10)
    c, _tc = service.create("acme", H1, ttl_seconds=1000)
    assert service.consume(ta, tenant_id="acme", ir_hash=H1).success
    clock.advance(20)  # b is past its expiry but nobody touched it yet
    assert [x.approval_id for x in service.list("acme", "pending").items] == [c.approval_id]
    assert [x.approval_id for x in service.list("acme", "expired").items] == [b.approval_id]
    assert [x.approval_id for x in service.list("acme", ApprovalStatus.CONSUMED).items] == [a.approval_id]
    assert {x.status for x in service.list("acme").items} == {
        ApprovalStatus.CONSUMED, ApprovalStatus.EXPIRED, ApprovalStatus.PENDING}
    with pytest.raises(ApprovalError, match="unknown approval status"):
        service.list("acme", "done")


def test_sweep_expires_once_and_purge_removes_finished(env: tuple[ApprovalService, MemorySink],
                                                       clock: Clock) -> None:
    """Defect 8 of the original: expired approvals were never removed."""
    service, sink = env
    stale, _ = service.create("acme", H1, ttl_seconds=10)
    used, token = service.create("acme", H1, ttl_seconds=10)
    live, _ = service.create("acme", H1, ttl_seconds=5000)
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    clock.advance(11)
    assert service.sweep() == 1
    assert service.sweep() == 0
    expired = sink.of_type("ir.approval_expired")
    assert [e.payload["approval_id"] for e in expired] == [stale.approval_id]
    assert expired[0].payload["expired_at"].startswith("2026-01-01T12:00:10")
    got = service.get(stale.approval_id, "acme")
    assert got is not None and got.status is ApprovalStatus.EXPIRED
    assert service.purge(older_than=3600) == 0  # finished too recently
    clock.advance(3600)  # an expired approval finished at its expires_at, not when it was swept
    assert service.purge(older_than=timedelta(hours=1)) == 2
    assert service.get(stale.approval_id, "acme") is None
    assert service.get(used.approval_id, "acme") is None
    assert service.get(live.approval_id, "acme") is not None  # pending ones are kept
    assert [a.approval_id for a in service.list("acme").items] == [live.approval_id]
    assert_events_valid(sink)


def test_get_touching_an_expired_approval_records_it_once(env: tuple[ApprovalService, MemorySink],
                                                          clock: Clock) -> None:
    service, sink = env
    approval, token = service.create("acme", H1, ttl_seconds=5)
    clock.advance(5)
    got = service.get(approval.approval_id, "acme")
    assert got is not None and got.status is ApprovalStatus.EXPIRED
    assert service.get(approval.approval_id, "acme") is not None
    assert service.consume(token, tenant_id="acme", ir_hash=H1).reason is ConsumeReason.EXPIRED
    assert len(sink.of_type("ir.approval_expired")) == 1


def test_rotated_key_still_verifies_old_tokens(store_url: str, clock: Clock) -> None:
    old = KeyRing.generate("k1")
    store = open_store(store_url)
    try:
        before = ApprovalService(store, old, clock=clock)
        _, token = before.create("acme", H1)
        _, token_b = before.create("acme", H1)
        rotated = KeyRing.parse(KeyRing.generate("k2").to_text() + "," + old.to_text())
        after = ApprovalService(store, rotated, clock=clock)
        _, fresh = after.create("acme", H1)
        assert after.consume(token, tenant_id="acme", ir_hash=H1).success
        assert after.consume(fresh, tenant_id="acme", ir_hash=H1).success
        # once the old key is removed, its tokens no longer verify
        dropped = ApprovalService(store, KeyRing(rotated.current), clock=clock)
        assert dropped.consume(token_b, tenant_id="acme", ir_hash=H1).reason is ConsumeReason.TOKEN_NOT_FOUND
    finally:
        store.close()


def test_nothing_returned_holds_the_token_or_its_digest(env: tuple[ApprovalService, MemorySink]) -> None:
    service, sink = env
    approval, token = service.create("acme", H1)
    key = service._keyring()  # the digest a leak would show
    digest = key.digest_current(token)[1]
    outputs: list[Any] = [approval, approval.to_dict(), service.get(approval.approval_id, "acme"),
                          service.list("acme"), service.consume(token, tenant_id="acme", ir_hash=H1),
                          service.revoke(approval.approval_id, "acme"), service, service.store]
    text = repr(outputs) + json.dumps(approval.to_dict()) + "".join(e.to_json() for e in sink.events)
    assert str(token) not in text and digest not in text
    assert "irgap_" not in repr((approval, token)).replace("ApprovalToken('irgap_…<redacted>')", "")


def test_service_without_key_reads_but_cannot_create_or_consume(store_url: str) -> None:
    store = open_store(store_url)
    try:
        writer = ApprovalService(store, KeyRing.generate())
        approval, token = writer.create("acme", H1)
        reader = ApprovalService(store, None)
        assert reader.get(approval.approval_id, "acme") is not None
        with pytest.raises(ApprovalKeyError):
            reader.create("acme", H1)
        with pytest.raises(ApprovalKeyError):
            reader.consume(token, tenant_id="acme", ir_hash=H1)
    finally:
        store.close()


def test_async_forms(env: tuple[ApprovalService, MemorySink], clock: Clock) -> None:
    service, sink = env

    async def flow() -> None:
        approval, token = await service.acreate("acme", H1, ttl_seconds=60)
        results = await asyncio.gather(*(service.aconsume(token, tenant_id="acme", ir_hash=H1) for _ in range(8)))
        assert sum(r.success for r in results) == 1
        got = await service.aget(approval.approval_id, "acme")
        assert got is not None and got.status is ApprovalStatus.CONSUMED
        assert [a.approval_id for a in (await service.alist("acme")).items] == [approval.approval_id]
        other, _ = await service.acreate("acme", H1)
        revoked = await service.arevoke(other.approval_id, "acme", "carol")
        assert revoked is not None and revoked.status is ApprovalStatus.REVOKED
        assert await service.asweep() == 0
        clock.advance(1)
        assert await service.apurge(0) == 2

    asyncio.run(flow())
    assert len(sink.of_type("ir.approval_consumed")) == 1


def test_consumed_event_is_in_the_store_outbox(env: tuple[ApprovalService, MemorySink], request: Any) -> None:
    """The durable stores record `ir.approval_consumed` in the same atomic unit as the consume,
    with the id the bus sees."""
    service, sink = env
    _, token = service.create("acme", H1)
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    published = sink.of_type("ir.approval_consumed")
    assert len(published) == 1
    url = service.store.outbox_url
    if url is None:
        assert request.node.callspec.params["store_url"] == "memory"
        return
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///"):]) as conn:
            rows = conn.execute("SELECT event_id, type, critical, body FROM irgov_outbox").fetchall()
        assert [(r[0], r[1], r[2]) for r in rows] == [(published[0].id, "ir.approval_consumed", 1)]
        assert json.loads(rows[0][3])["payload"] == dict(published[0].payload)
    elif url.startswith("postgresql://"):
        source = source_from_url(url)  # what the relay drains, read the way it reads
        try:
            events, cursor = source.read(None, 10)
            assert [(e.id, e.type, e.critical) for e in events] == [(published[0].id, "ir.approval_consumed", True)]
            assert dict(events[0].payload) == dict(published[0].payload)
            assert source.read(cursor, 10) == ([], cursor)
        finally:
            source.close()
    else:
        client = request.getfixturevalue("redis_client")
        stream = url.split("stream=", 1)[1].replace("%3A", ":")
        entries = client.xrange(stream)
        assert len(entries) == 1
        fields = {k.decode(): v.decode() for k, v in entries[0][1].items()}
        assert fields["event_id"] == published[0].id and fields["type"] == "ir.approval_consumed"
        assert fields["critical"] == "1" and fields["tenant_id"] == "acme"
        assert json.loads(fields["body"])["id"] == published[0].id


@pytest.mark.parametrize("older_than", [1e99, 1e300, timedelta.max])
def test_purge_older_than_any_approval_removes_nothing(env: tuple[ApprovalService, MemorySink], clock: Clock,
                                                       older_than: Any) -> None:
    """A retention longer than any store's time range is valid and purges nothing (no overflow)."""
    service, _ = env
    _, token = service.create("acme", H1, ttl_seconds=10)
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    clock.advance(86400)
    assert service.purge(older_than) == 0
    assert service.purge(0) == 1
