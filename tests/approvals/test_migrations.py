"""Versioned schema migrations: numbered steps, one transaction each, checked at start-up, and
`irgov db status|upgrade`, on SQLite files and on the real PostgreSQL server.

A "v1 database" below is built with the first release's DDL (step 1 of each component) and holds
data; the upgrade must keep that data usable (a token minted before it is consumed after it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from irgov_policy.approvals import ApprovalService, KeyRing, open_store
from irgov_policy.approvals.ledger_postgres import LEDGER_SCHEMA as PG_LEDGER_V1
from irgov_policy.approvals.ledger_sqlite import LEDGER_SCHEMA as SQLITE_LEDGER_V1
from irgov_policy.approvals.schema_postgres import APPROVALS_V1 as PG_APPROVALS_V1
from irgov_policy.approvals.schema_postgres import POSTGRES_COMPONENTS
from irgov_policy.approvals.schema_sqlite import APPROVALS_V1 as SQLITE_APPROVALS_V1
from irgov_policy.approvals.schema_sqlite import SQLITE_COMPONENTS
from irgov_policy.approvals.store_postgres import PostgresApprovalStore
from irgov_policy.approvals.store_sqlite import SQLiteApprovalStore
from irgov_policy.approvals.tokens import new_token
from irgov_policy.cli import main
from irgov_policy.errors import EventError, StoreError
from irgov_policy.events.outbox_postgres import OUTBOX_SCHEMA as PG_OUTBOX_V1
from irgov_policy.events.outbox_sqlite import DELIVERY_SCHEMA, OUTBOX_SCHEMA, SqliteOutbox
from irgov_policy.storage.migrations import Component, Step, sqlite_versions, upgrade_sqlite

from .helpers import H1

V1_COLUMNS = ("approval_id, tenant_id, ir_hash, token_kid, token_digest, status, ttl_seconds, created_us, "
              "expires_us, created_by")
LATEST = {c.name: c.latest for c in SQLITE_COMPONENTS}


def _v1_row(key: KeyRing, approval_id: str = "apr_v1") -> tuple[tuple[Any, ...], str]:
    token = new_token()
    kid, digest = key.digest_current(token)
    created = 1_700_000_000_000_000
    far = 4_000_000_000_000_000  # pending for a long time: consumable after the upgrade
    return (approval_id, "acme", H1, kid, digest, "pending", "3600", created, far, "alice"), str(token)


def _make_sqlite_v1(path: Path, key: KeyRing) -> str:
    """The first release's file: its DDL, its version rows (no outbox row, as it wrote them), one
    pending approval, one decision and one request."""
    row, token = _v1_row(key)
    conn = sqlite3.connect(path)
    conn.executescript(SQLITE_APPROVALS_V1 + SQLITE_LEDGER_V1 + OUTBOX_SCHEMA)
    conn.execute("CREATE TABLE irgov_schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    conn.execute("INSERT INTO irgov_schema_version VALUES ('approvals', 1), ('ledger', 1)")
    conn.execute(f"INSERT INTO irgov_approvals ({V1_COLUMNS}) VALUES ({', '.join('?' * 10)})", row)
    conn.execute("INSERT INTO irgov_decisions VALUES ('acme', ?, 'ESCALATE', 2, 'req-1', 1)", (H1,))
    conn.execute("INSERT INTO irgov_approval_requests (request_id, tenant_id, ir_hash, requested_by, risk_tier, "
                 "created_us, state) VALUES ('areq_1', 'acme', ?, 'bob', 2, 1, 'requested')", (H1,))
    conn.commit()
    conn.close()
    return token


def _versions(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return sqlite_versions(conn)
    finally:
        conn.close()


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# -- the mechanism -------------------------------------------------------------------------------


def test_steps_must_be_numbered_in_order() -> None:
    with pytest.raises(ValueError, match="numbered 1..n"):
        Component("x", (Step(1, "a", "SELECT 1"), Step(3, "b", "SELECT 1")))


def test_a_failing_step_leaves_the_previous_version_whole(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    good = Step(1, "table", "CREATE TABLE t (a INTEGER);")
    bad = Step(2, "column then a mistake", "ALTER TABLE t ADD COLUMN b TEXT;\nINSERT INTO missing VALUES (1);")
    with pytest.raises(sqlite3.OperationalError, match="no such table: missing"):
        upgrade_sqlite(conn, [Component("x", (good, bad))])
    assert sqlite_versions(conn) == {"x": 1}
    assert [r[1] for r in conn.execute("PRAGMA table_info(t)")] == ["a"]  # step 2 rolled back entirely
    history = conn.execute("SELECT component, version, summary FROM irgov_schema_history").fetchall()
    assert history == [("x", 1, "table")]
    assert upgrade_sqlite(conn, [Component("x", (good,))]) == []  # nothing left to apply
    conn.close()


# -- SQLite --------------------------------------------------------------------------------------


def test_a_new_sqlite_store_is_created_at_the_latest_version(tmp_path: Path) -> None:
    SQLiteApprovalStore(tmp_path / "a.db").close()
    assert _versions(tmp_path / "a.db") == LATEST


def test_a_v1_sqlite_database_with_data_is_upgraded_at_start_up(tmp_path: Path) -> None:
    key = KeyRing.generate()
    path = tmp_path / "a.db"
    token = _make_sqlite_v1(path, key)
    assert _versions(path) == {"approvals": 1, "ledger": 1}
    store = open_store(f"sqlite:///{path}")  # the embedded default upgrades by itself
    try:
        assert _versions(path) == LATEST
        record = store.get("apr_v1")
        # migration 2 gave both the request id of their decision
        assert record is not None and record.created_by == "alice" and record.correlation_id == "req-1"
        request = store.ledger.get_request("areq_1")
        assert request is not None and request.requested_by == "bob" and request.correlation_id == "req-1"
        decision = store.ledger.get_decision("acme", H1)
        assert decision is not None and decision.request_id == "req-1"
        assert ApprovalService(store, key).consume(token, tenant_id="acme", ir_hash=H1).success
    finally:
        store.close()
    conn = sqlite3.connect(path)
    history = conn.execute("SELECT component, version FROM irgov_schema_history ORDER BY component, version").fetchall()
    conn.close()
    assert history == [("approvals", 2), ("approvals", 3), ("approvals", 4), ("ledger", 2), ("ledger", 3), ("ledger", 4),
                       ("outbox", 1)]  # applied


def test_sqlite_without_auto_migrate_refuses_then_db_upgrade_upgrades(tmp_path: Path) -> None:
    key = KeyRing.generate()
    path = tmp_path / "a.db"
    token = _make_sqlite_v1(path, key)
    url = f"sqlite:///{path}?auto_migrate=false"
    with pytest.raises(StoreError, match=r"older schema \(approvals 1 -> 4, ledger 1 -> 4, outbox 0 -> 1\): "
                                         r"run `irgov db upgrade`") as info:
        open_store(url)
    assert "\n" not in str(info.value)
    assert _versions(path) == {"approvals": 1, "ledger": 1}  # refused means untouched

    outbox = f"sqlite:///{tmp_path / 'outbox.db'}"
    status = _cli("db", "status", "--store", url, "--outbox", outbox)
    assert status.exit_code == 2, status.output
    assert "approvals  version 1, this version writes 4: upgrade needed" in status.output
    assert "relay      version 0, this version writes 2: not created" in status.output
    assert not (tmp_path / "outbox.db").exists()  # status changes nothing

    upgrade = _cli("db", "upgrade", "--store", url, "--outbox", outbox)
    assert upgrade.exit_code == 0, upgrade.output
    assert "approvals -> version 2: approvals carry the IR's request id" in upgrade.output
    assert "ledger -> version 4" in upgrade.output and "approvals -> version 1" not in upgrade.output
    assert "approvals -> version 3: a consume's idempotency key" in upgrade.output
    assert "approvals -> version 4: the execution gate's answer" in upgrade.output
    assert "relay -> version 2" in upgrade.output and upgrade.output.rstrip().endswith("10 step(s) applied")
    assert _versions(path) == LATEST
    again = _cli("db", "upgrade", "--store", url, "--outbox", outbox)
    assert again.exit_code == 0 and again.output.rstrip().endswith("already up to date")
    assert _cli("db", "status", "--store", url, "--outbox", outbox).exit_code == 0

    store = open_store(url)
    try:
        assert ApprovalService(store, key).consume(token, tenant_id="acme", ir_hash=H1).success
    finally:
        store.close()


def test_a_newer_sqlite_schema_is_refused_by_the_store_and_by_db_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    SQLiteApprovalStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE irgov_schema_version SET version = 9 WHERE component = 'ledger'")
    with pytest.raises(StoreError, match="ledger schema version 9: this version knows up to 4") as info:
        SQLiteApprovalStore(path)
    assert "\n" not in str(info.value)
    result = CliRunner().invoke(main, ["db", "upgrade", "--store", f"sqlite:///{path}", "--outbox", "memory://"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"irgov: error: sqlite database `{path}` has ledger schema version 9: this version knows up to 4; "
        "upgrade the package or use another database"]
    status = _cli("db", "status", "--store", f"sqlite:///{path}", "--outbox", "memory://")
    assert status.exit_code == 2 and "ledger     version 9, this version writes 4: newer than this version" \
        in status.output


def test_a_bad_auto_migrate_value_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="option `auto_migrate` must be true or false, not `maybe`"):
        open_store(f"sqlite:///{tmp_path / 'a.db'}?auto_migrate=maybe")


def test_an_outbox_file_of_the_first_release_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    conn = sqlite3.connect(path)
    conn.executescript(OUTBOX_SCHEMA + DELIVERY_SCHEMA)  # no version table at all
    conn.execute("INSERT INTO irgov_outbox (event_id, tenant_id, type, critical, body, created_at) "
                 "VALUES ('e1', 'acme', 'ir.validated_pass', 0, '{}', '2026-01-01T00:00:00Z')")
    conn.commit()
    conn.close()
    outbox = SqliteOutbox(path)
    try:
        assert outbox.count() == 1
    finally:
        outbox.close()
    assert _versions(path) == {"outbox": 1, "relay": 2}
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE irgov_schema_version SET version = 5 WHERE component = 'relay'")
    with pytest.raises(EventError, match="relay schema version 5: this version knows up to 2"):
        SqliteOutbox(path)


def test_db_status_of_a_redis_store_says_nothing_to_migrate(tmp_path: Path) -> None:
    result = _cli("db", "status", "--store", "redis://127.0.0.1:6379/15", "--outbox", "memory://")
    assert result.exit_code == 0
    assert "Redis hashes: a field a newer version adds is optional when read, nothing to migrate" in result.output


# -- PostgreSQL ----------------------------------------------------------------------------------


def _schema(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


def _admin(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.split("?", 1)[0], autocommit=True)


def _make_postgres_v1(url: str, key: KeyRing) -> str:
    row, token = _v1_row(key)
    schema = _schema(url)
    with _admin(url) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(PG_APPROVALS_V1)
        conn.execute(PG_LEDGER_V1)
        conn.execute(PG_OUTBOX_V1)
        conn.execute("CREATE TABLE irgov_schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        conn.execute("INSERT INTO irgov_schema_version VALUES ('approvals', 1), ('ledger', 1), ('outbox', 1)")
        conn.execute(f"INSERT INTO irgov_approvals ({V1_COLUMNS}) VALUES ({', '.join(['%s'] * 10)})", row)
        conn.execute("INSERT INTO irgov_approval_requests (request_id, tenant_id, ir_hash, requested_by, "
                     "risk_tier, created_us, state) VALUES ('areq_1', 'acme', %s, 'bob', 2, 1, 'requested')", (H1,))
        conn.execute("INSERT INTO irgov_decisions VALUES ('acme', %s, 'ESCALATE', 2, 'req-1', 1)", (H1,))
    return token


def _pg_versions(url: str) -> dict[str, int]:
    with _admin(url) as conn:
        return dict(conn.execute(f'SELECT component, version FROM "{_schema(url)}".irgov_schema_version'))


@pytest.mark.postgres
def test_a_new_postgres_schema_is_created_at_the_latest_version(postgres_schema_url: str) -> None:
    PostgresApprovalStore(postgres_schema_url).close()
    assert _pg_versions(postgres_schema_url) == {c.name: c.latest for c in POSTGRES_COMPONENTS}


@pytest.mark.postgres
def test_a_v1_postgres_schema_is_refused_until_db_upgrade(postgres_schema_url: str) -> None:
    key = KeyRing.generate()
    token = _make_postgres_v1(postgres_schema_url, key)
    with pytest.raises(StoreError, match=r"older schema \(approvals 1 -> 4, ledger 1 -> 4\): run `irgov db "
                                         r"upgrade`, or set `auto_migrate=true` on the store's address") as info:
        open_store(postgres_schema_url)
    assert "\n" not in str(info.value)
    assert _pg_versions(postgres_schema_url) == {"approvals": 1, "ledger": 1, "outbox": 1}

    status = _cli("db", "status", "--store", postgres_schema_url, "--outbox", "memory://")
    assert status.exit_code == 2 and "ledger     version 1, this version writes 4: upgrade needed" in status.output
    upgrade = _cli("db", "upgrade", "--store", postgres_schema_url, "--outbox", "memory://")
    assert upgrade.exit_code == 0, upgrade.output
    lines = [line for line in upgrade.output.splitlines() if "-> version" in line]
    assert [line.split(": ", 1)[1].split(":")[0] for line in lines] == ["approvals -> version 2",
                                                                        "approvals -> version 3",
                                                                        "approvals -> version 4",
                                                                        "ledger -> version 2",
                                                                        "ledger -> version 3",
                                                                        "ledger -> version 4"]
    assert upgrade.output.rstrip().endswith("6 step(s) applied")
    assert _pg_versions(postgres_schema_url) == {"approvals": 4, "ledger": 4, "outbox": 1}
    assert _cli("db", "status", "--store", postgres_schema_url, "--outbox", "memory://").exit_code == 0

    store = open_store(postgres_schema_url)
    try:
        request = store.ledger.get_request("areq_1")
        assert request is not None and request.correlation_id == "req-1"  # from its decision
        record = store.get("apr_v1")
        assert record is not None and record.correlation_id == "req-1"
        assert ApprovalService(store, key).consume(token, tenant_id="acme", ir_hash=H1).success
    finally:
        store.close()


@pytest.mark.postgres
def test_auto_migrate_upgrades_a_v1_postgres_schema_at_start_up(postgres_schema_url: str) -> None:
    key = KeyRing.generate()
    token = _make_postgres_v1(postgres_schema_url, key)
    store = open_store(postgres_schema_url + "&auto_migrate=true")
    try:
        assert _pg_versions(postgres_schema_url) == {"approvals": 4, "ledger": 4, "outbox": 1}
        assert ApprovalService(store, key).consume(token, tenant_id="acme", ir_hash=H1).success
    finally:
        store.close()
    with _admin(postgres_schema_url) as conn:
        history = conn.execute(f'SELECT component, version FROM "{_schema(postgres_schema_url)}".'
                               "irgov_schema_history ORDER BY 1, 2").fetchall()
    assert history == [("approvals", 2), ("approvals", 3), ("approvals", 4), ("ledger", 2), ("ledger", 3), ("ledger", 4)]


@pytest.mark.postgres
def test_a_newer_postgres_schema_is_refused_by_db_upgrade(postgres_schema_url: str) -> None:
    PostgresApprovalStore(postgres_schema_url).close()
    with _admin(postgres_schema_url) as conn:
        conn.execute(f"UPDATE \"{_schema(postgres_schema_url)}\".irgov_schema_version SET version = 7 "
                     "WHERE component = 'outbox'")
    result = CliRunner().invoke(main, ["db", "upgrade", "--store", postgres_schema_url, "--outbox", "memory://"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "has outbox schema version 7: this version knows up to 1" in result.output


# -- processes starting at once ------------------------------------------------------------------


def _sqlite_child(path: str, start: Any, results: Any) -> None:
    start.wait(10)
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        results.put(upgrade_sqlite(conn, SQLITE_COMPONENTS))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(repr(exc))
    finally:
        conn.close()


def _postgres_child(url: str, start: Any, results: Any) -> None:
    applied: list[tuple[str, int]] = []
    start.wait(10)
    try:
        PostgresApprovalStore(url, progress=lambda component, step: applied.append((component, step.version))
                              ).close()
        results.put(applied)
    except Exception as exc:
        results.put(repr(exc))


def _race(target: Any, where: str, processes: int = 4) -> list[tuple[str, int]]:
    import multiprocessing

    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    children = [context.Process(target=target, args=(where, start, results)) for _ in range(processes)]
    for child in children:
        child.start()
    start.set()
    outcomes = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(30)
    assert all(isinstance(o, list) for o in outcomes), outcomes
    return [pair for outcome in outcomes for pair in outcome]


def test_processes_upgrading_one_sqlite_file_at_once_apply_each_step_once(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    _make_sqlite_v1(path, KeyRing.generate())
    applied = _race(_sqlite_child, str(path))
    expected = [(c.name, s.version) for c in SQLITE_COMPONENTS for s in c.steps
                if s.version > {"approvals": 1, "ledger": 1}.get(c.name, 0)]
    assert sorted(applied) == sorted(expected)  # each once, whichever process applied it
    assert _versions(path) == LATEST


@pytest.mark.postgres
def test_processes_upgrading_one_postgres_schema_at_once_apply_each_step_once(postgres_schema_url: str) -> None:
    _make_postgres_v1(postgres_schema_url, KeyRing.generate())
    applied = _race(_postgres_child, postgres_schema_url + "&auto_migrate=true")
    expected = [(c.name, s.version) for c in POSTGRES_COMPONENTS for s in c.steps if s.version > 1]
    assert sorted(applied) == sorted(expected)
    assert _pg_versions(postgres_schema_url) == {c.name: c.latest for c in POSTGRES_COMPONENTS}
