"""One store-address type: `sqlite:///x.db` names the same file for every store (bug 1): the
approval store, its ledger, the outbox, the relay's outbox source and the key file's directory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from irgov_policy.approvals import open_store
from irgov_policy.approvals.keyfile import default_key_file
from irgov_policy.errors import StoreError
from irgov_policy.events.outbox import outbox_from_url
from irgov_policy.events.outbox_sqlite import SqliteOutbox
from irgov_policy.events.sinks.redis_stream import RedisStreamSink
from irgov_policy.events.sources import RedisStreamSource, SqliteSource, source_from_url
from irgov_policy.kernel import Governance
from irgov_policy.storage import StoreURL, redact


@pytest.mark.parametrize("relative", ["x.db", "data/x.db"])
def test_a_relative_sqlite_address_names_one_file_for_every_store(
        relative: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{relative}"
    expected = (tmp_path / relative).resolve()

    store = open_store(url)
    outbox = outbox_from_url(url)
    source = source_from_url(url)
    try:
        assert Path(store.path).resolve() == expected  # type: ignore[attr-defined]
        assert isinstance(outbox, SqliteOutbox) and Path(outbox.path).resolve() == expected
        assert isinstance(source, SqliteSource) and Path(source.path).resolve() == expected
        assert default_key_file(url).resolve() == expected.parent / "approval.key"
        # The ledger is tables of that same file, not a file of its own.
        tables = {r[0] for r in sqlite3.connect(expected).execute("SELECT name FROM sqlite_master")}
        assert {"irgov_approvals", "irgov_approval_requests", "irgov_decisions", "irgov_outbox"} <= tables
        # The addresses the stores hand on (to the relay) name the same file again.
        assert store.outbox_url is not None
        assert StoreURL.parse(store.outbox_url).sqlite_path() == expected
        assert StoreURL.parse(outbox.url).sqlite_path().resolve() == expected
    finally:
        source.close()
        outbox.close()
        store.close()


def test_the_kernel_keeps_every_file_where_the_addresses_say(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Governance.from_config(environ={}, approval_store="sqlite:///data/approvals.db",
                                outbox="sqlite:///data/outbox.db") as gov:
        assert gov.approvals.store.path == (tmp_path / "data" / "approvals.db").resolve()  # type: ignore[attr-defined]
    names = sorted(p.name for p in (tmp_path / "data").iterdir() if not p.name.endswith(("-wal", "-shm")))
    assert "approvals.db" in names and "outbox.db" in names and "approval.key" in names


def test_an_absolute_sqlite_address_has_four_slashes(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "x.db"
    url = f"sqlite:///{target}"
    assert url.startswith("sqlite:////")
    assert StoreURL.parse(url).sqlite_path() == target
    assert StoreURL.for_sqlite_file(target).text == url
    assert StoreURL.parse("sqlite:///rel/x.db").sqlite_path() == Path("rel/x.db")


def test_redis_addresses() -> None:
    url = StoreURL.parse("rediss://alice:s3cret@redis.internal:6380/2?prefix=p:&retention=60")
    assert (url.scheme, url.host, url.port, url.database, url.username) == ("rediss", "redis.internal", 6380, 2, "alice")
    assert url.password == "s3cret" and dict(url.options) == {"prefix": "p:", "retention": "60"}
    assert url.server_text() == "rediss://alice:s3cret@redis.internal:6380/2"
    assert str(url) == "rediss://alice:***@redis.internal:6380/2?prefix=p:&retention=60"
    assert "s3cret" not in repr(url)
    default = StoreURL.parse("redis://localhost")
    assert (default.port, default.database) == (6379, 0)


@pytest.mark.parametrize("text, message", [
    ("nothing", "must look like `memory://`"),
    ("ftp://host", "unknown scheme `ftp`"),
    ("sqlite://", "must be `sqlite:///relative.db` or `sqlite:////absolute.db`"),
    ("sqlite:///", "names no file"),
    ("sqlite:///data/", "names no file"),
    ("sqlite://host/x.db", "names a host"),
    ("memory://somewhere", "must be `memory://`"),
    ("redis:///0", "names no host"),
    ("redis://h:6379/zero", "the database after the host must be a number"),
    ("redis://h:port/0", "is malformed"),
    ("redis://h/0?a=1&a=2", "repeats option `a`"),
])
def test_bad_addresses_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        StoreURL.parse(text)
    assert "\n" not in str(caught.value)


def test_a_password_never_reaches_an_error_message() -> None:
    for text in ("redis://u:hunter2@h:6379/zero", "redis://:hunter2@h:6379/0?colour=blue",
                 "ftp://u:hunter2@h/x"):
        with pytest.raises(StoreError) as caught:
            open_store(text)
        assert "hunter2" not in str(caught.value) and "***" in str(caught.value)
    assert redact("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact("redis://h:1/0") == "redis://h:1/0"


def test_redis_users_share_the_address_type() -> None:
    sink = RedisStreamSink("redis://:pw@h:6379/3?stream=s&maxlen=10")
    assert sink.name == "redis://h:6379/3?stream=s" and sink.maxlen == 10
    with pytest.raises(StoreError, match="unknown redis sink option `colour`"):
        RedisStreamSink("redis://h:6379/3?colour=blue")
    source = source_from_url("redis://:pw@h:6379/3?stream=o")
    assert isinstance(source, RedisStreamSource)
    assert source.stream == "o" and "pw" not in source.key


def test_every_redis_client_is_built_with_the_same_settings() -> None:
    from irgov_policy.storage import CONNECT_TIMEOUT, HEALTH_CHECK_INTERVAL, SOCKET_TIMEOUT
    from irgov_policy.storage.timeouts import DEFAULT_STORE_TIMEOUT

    store = open_store("redis://127.0.0.1:1/0?prefix=p:")
    sink = RedisStreamSink("redis://127.0.0.1:1/0?stream=s")
    source = RedisStreamSource("redis://127.0.0.1:1/0?stream=o")
    # The ledger has no client of its own: it writes through the store's (one transaction).
    assert store.ledger._client is store._client  # type: ignore[attr-defined]
    clients = [store._client, sink._redis(), source._redis()]  # type: ignore[attr-defined]
    # The approval store is on the request path: its commands and connects wait `store_timeout`.
    expected = [(DEFAULT_STORE_TIMEOUT, DEFAULT_STORE_TIMEOUT), (CONNECT_TIMEOUT, SOCKET_TIMEOUT),
                (CONNECT_TIMEOUT, SOCKET_TIMEOUT)]
    for client, (connect, command) in zip(clients, expected, strict=True):
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_connect_timeout"] == connect
        assert kwargs["socket_timeout"] == command
        assert kwargs["health_check_interval"] == HEALTH_CHECK_INTERVAL
    short = open_store("redis://127.0.0.1:1/0?prefix=p:", timeout=1.5)
    assert short._client.connection_pool.connection_kwargs["socket_timeout"] == 1.5  # type: ignore[attr-defined]
    short.close()
    for part in (store, sink, source):
        part.close()


def test_a_relay_continues_from_the_cursor_saved_under_the_old_source_key(tmp_path: Path) -> None:
    """Earlier versions named an attached store outbox `sqlite:///abs/x.db`; StoreURL names it
    `sqlite:////abs/x.db`. The relay picks up the cursor saved under the old name instead of
    importing (and delivering) the store's events a second time."""
    from irgov_policy.events.envelope import new_event
    from irgov_policy.events.outbox_sqlite import append_event_in_transaction, ensure_outbox_schema
    from irgov_policy.events.relay import Relay

    store_db = tmp_path / "approvals.db"
    conn = sqlite3.connect(store_db, isolation_level=None)
    ensure_outbox_schema(conn)
    events = [new_event("ir.approval_created", {"n": i}, tenant_id="acme") for i in range(3)]
    for event in events:
        append_event_in_transaction(conn, event)
    conn.close()
    source = SqliteSource(str(store_db))
    assert source.key == f"sqlite:///{store_db}" and source.legacy_key == f"sqlite://{store_db}"
    outbox = SqliteOutbox(tmp_path / "outbox.db")
    try:
        assert outbox.import_events(source.legacy_key, events[:2], "2") == 2
        relay = Relay(outbox)
        relay.add_source(source)
        assert relay.import_sources() == 1
        assert outbox.source_cursor(source.key) == "3"
    finally:
        source.close()
        outbox.close()
