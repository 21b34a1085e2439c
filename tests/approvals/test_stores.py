"""What each store promises beyond the shared contract: SQLite durability settings and schema,
Redis key lifetimes and bounded indexes, the memory cap, and the URL factory."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.approvals import ApprovalService, ApprovalStatus, KeyRing, MemoryApprovalStore, open_store
from irgov_policy.approvals.store_redis import RedisApprovalStore
from irgov_policy.approvals.store_sqlite import SCHEMA_VERSION, SQLiteApprovalStore
from irgov_policy.errors import StoreError

from .conftest import redis_store_url
from .helpers import H1, Clock


def test_sqlite_settings_and_schema(tmp_path: Path) -> None:
    store = SQLiteApprovalStore(tmp_path / "sub" / "a.db")
    try:
        conn = store._conn()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
        assert conn.execute("SELECT version FROM irgov_schema_version WHERE component = 'approvals'"
                            ).fetchone()[0] == SCHEMA_VERSION
        assert store.outbox_url == f"sqlite:///{(tmp_path / 'sub' / 'a.db').resolve()}"
        service = ApprovalService(store, KeyRing.generate())
        approval, token = service.create("acme", H1)
        assert service.consume(token, tenant_id="acme", ir_hash=H1).success
        # the trigger refuses a backward transition whatever code issues it
        with pytest.raises(sqlite3.IntegrityError, match="only moves forward"):
            conn.execute("UPDATE irgov_approvals SET status = 'pending' WHERE approval_id = ?",
                         (approval.approval_id,))
        # the token itself is nowhere in the file
        assert str(token).encode() not in (tmp_path / "sub" / "a.db").read_bytes()
    finally:
        store.close()


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    SQLiteApprovalStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE irgov_schema_version SET version = 99 WHERE component = 'approvals'")
    with pytest.raises(StoreError, match="schema version 99"):
        SQLiteApprovalStore(path)


def test_sqlite_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    key = KeyRing.generate()
    first = ApprovalService(open_store(url), key)
    _, token = first.create("acme", H1)
    first.store.close()
    second = ApprovalService(open_store(url), key)
    assert second.consume(token, tenant_id="acme", ir_hash=H1).success
    second.store.close()


def test_memory_store_is_bounded() -> None:
    """Defect 8 of the original: nothing bounded the store."""
    clock = Clock()
    service = ApprovalService(MemoryApprovalStore(max_records=3), KeyRing.generate(), clock=clock)
    tokens = [service.create("acme", H1, ttl_seconds=10)[1] for _ in range(3)]
    with pytest.raises(StoreError, match="full"):
        service.create("acme", H1)
    assert service.consume(tokens[0], tenant_id="acme", ir_hash=H1).success
    clock.advance(20)
    assert service.purge(older_than=5) == 3  # one consumed, two swept as expired
    service.create("acme", H1)


def test_redis_keys_live_ttl_plus_retention_and_replay_is_recognised(
        redis_client: Any, redis_url: str, redis_prefix: str) -> None:
    """Defect 5 of the original: the Redis store never worked. Keys outlive `expires_at` by the
    retention, so a replay after expiry is still `already_consumed`."""
    url = redis_store_url(redis_url, redis_prefix) + "&retention=100"
    store = open_store(url)
    assert isinstance(store, RedisApprovalStore) and store.retention_seconds == 100
    service = ApprovalService(store, KeyRing.generate())
    approval, token = service.create("acme", H1, ttl_seconds=60)
    for key in (f"{redis_prefix}approval:{approval.approval_id}",):
        assert 159_000 < redis_client.pttl(key) <= 160_001
    token_keys = list(redis_client.scan_iter(match=f"{redis_prefix}token:*"))
    assert len(token_keys) == 1 and str(token).encode() not in token_keys[0]
    assert 159_000 < redis_client.pttl(token_keys[0]) <= 160_001
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    assert redis_client.pttl(f"{redis_prefix}approval:{approval.approval_id}") > 150_000
    assert store.outbox_url == f"{redis_url}?stream={redis_prefix.replace(':', '%3A')}outbox"
    store.close()


def test_redis_tenant_index_is_bounded(redis_client: Any, redis_url: str, redis_prefix: str) -> None:
    store = open_store(redis_store_url(redis_url, redis_prefix) + "&index_max=5")
    clock = Clock()
    service = ApprovalService(store, KeyRing.generate(), clock=clock)
    ids = []
    for _ in range(12):
        ids.append(service.create("acme", H1)[0].approval_id)
        clock.advance(1)
    assert redis_client.zcard(f"{redis_prefix}tenant:acme") == 5
    assert [a.approval_id for a in service.list("acme", limit=100).items] == list(reversed(ids))[:5]
    # entries older than any key can live are trimmed on the next create
    clock.advance(2 * 366 * 86400)
    service.create("acme", H1)
    assert redis_client.zcard(f"{redis_prefix}tenant:acme") == 1
    store.close()


def test_redis_purge_removes_every_key(redis_client: Any, redis_url: str, redis_prefix: str) -> None:
    store = open_store(redis_store_url(redis_url, redis_prefix))
    clock = Clock()
    service = ApprovalService(store, KeyRing.generate(), clock=clock)
    approval, token = service.create("acme", H1, ttl_seconds=5)
    service.create("acme", H1, ttl_seconds=5)
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    clock.advance(10)
    assert service.purge(0) == 2
    left = sorted(k.decode() for k in redis_client.scan_iter(match=f"{redis_prefix}*"))
    assert left == [f"{redis_prefix}outbox"]
    assert service.get(approval.approval_id, "acme") is None
    store.close()


@pytest.mark.parametrize("url, message", [
    ("nothing", "must look like"),
    ("ftp://host", "unknown scheme `ftp`"),
    ("sqlite://", "must be `sqlite:///relative.db`"),
    ("sqlite:///a.db?x=1", "unknown sqlite store option `x`.*known are `auto_migrate`"),
    ("memory://?max_records=0", "positive integer"),
    ("memory://?size=3", "unknown memory store option `size`"),
    ("redis://127.0.0.1:6379/15?colour=blue", "unknown redis store option `colour`"),
    ("redis://127.0.0.1:6379/15?retention=-1", "`retention` must be a positive integer"),
])
def test_bad_store_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_store_error_is_clean_when_redis_is_unreachable() -> None:
    store = open_store("redis://127.0.0.1:1/0")
    service = ApprovalService(store, KeyRing.generate())
    with pytest.raises(StoreError, match="redis store: cannot create an approval"):
        service.create("acme", H1)
    store.close()


def test_list_status_values() -> None:
    assert [s.value for s in ApprovalStatus] == ["pending", "consumed", "expired", "revoked"]


def test_redis_outbox_stream_lives_under_the_store_prefix(redis_client: Any, redis_url: str,
                                                          redis_prefix: str) -> None:
    """Stores under different prefixes on one server keep (and relay) separate outboxes."""
    store = open_store(f"{redis_url}?prefix={redis_prefix}")
    assert isinstance(store, RedisApprovalStore) and store.outbox_stream == f"{redis_prefix}outbox"
    service = ApprovalService(store, KeyRing.generate())
    _, token = service.create("acme", H1)
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    assert redis_client.xlen(f"{redis_prefix}outbox") == 1
    store.close()


def test_redis_outbox_stream_drops_entries_past_the_retention(redis_client: Any, redis_url: str,
                                                              redis_prefix: str) -> None:
    """The outbox stream is bounded like the keys: entries older than the retention are trimmed."""
    stream = f"{redis_prefix}outbox"
    redis_client.xadd(stream, {"body": "{}"}, id="1-0")  # recorded long before the retention
    recent = redis_client.xadd(stream, {"body": "{}"})
    service = ApprovalService(open_store(redis_store_url(redis_url, redis_prefix) + "&retention=3600"),
                              KeyRing.generate())
    _, token = service.create("acme", H1)
    assert service.consume(token, tenant_id="acme", ir_hash=H1).success
    entries = redis_client.xrange(stream)
    assert [e[0] for e in entries][:1] == [recent] and len(entries) == 2
    assert entries[1][1][b"type"] == b"ir.approval_consumed"
    service.store.close()


def test_sqlite_purge_bounds_the_store_outbox_unless_a_relay_owns_the_file(tmp_path: Path) -> None:
    from irgov_policy.events.outbox_sqlite import SqliteOutbox

    def outbox_rows(path: Path) -> int:
        with sqlite3.connect(path) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM irgov_outbox").fetchone()[0])

    for relay_owned in (False, True):
        path = tmp_path / f"a{int(relay_owned)}.db"
        clock = Clock()
        service = ApprovalService(SQLiteApprovalStore(path), KeyRing.generate(), clock=clock,
                                  retention_seconds=86400)
        if relay_owned:
            SqliteOutbox(path).close()  # the relay's delivery marks live in this very file
        _, token = service.create("acme", H1)
        assert service.consume(token, tenant_id="acme", ir_hash=H1).success
        clock.advance(3600)
        assert service.purge() == 0 and outbox_rows(path) == 1  # within the retention: kept
        clock.advance(2 * 86400)
        assert service.purge() == 1
        # undelivered events of a relay's own outbox are never purged by the store
        assert outbox_rows(path) == (1 if relay_owned else 0)
        service.store.close()
