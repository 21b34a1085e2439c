"""What only the PostgreSQL store does: its address, its schema version, its trigger, a restart."""

from __future__ import annotations

from typing import Any

import pytest

from irgov_policy.approvals import ApprovalService, KeyRing, open_store
from irgov_policy.approvals.ledger_records import DecisionEntry
from irgov_policy.approvals.store_postgres import SCHEMA_VERSION, PostgresApprovalStore
from irgov_policy.errors import StoreError
from irgov_policy.storage import StoreURL

from .helpers import H1


def _schema(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


def _admin(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.split("?", 1)[0], autocommit=True)


def test_address_parsing() -> None:
    url = StoreURL.parse("postgresql://irgov:s3cret@db.internal:6543/governance?schema=irgov&sslmode=require")
    assert (url.scheme, url.host, url.port, url.database_name, url.username) == (
        "postgresql", "db.internal", 6543, "governance", "irgov")
    assert "s3cret" not in str(url) and url.is_postgres
    assert url.without_options(["schema"]) == "postgresql://irgov:s3cret@db.internal:6543/governance?sslmode=require"
    assert StoreURL.parse("postgres://h/db").port == 5432
    for bad, message in [("postgresql:///db", "names no host"), ("postgresql://h", "must name one database"),
                         ("postgresql://h/a/b", "must name one database")]:
        with pytest.raises(StoreError, match=message):
            StoreURL.parse(bad)


@pytest.mark.parametrize("url, message", [
    ("postgresql://127.0.0.1/test?colour=blue", "unknown postgresql store option `colour`"),
    ("postgresql://127.0.0.1/test?schema=Bad-Name", "must be a lowercase identifier, not `Bad-Name`"),
    ("postgresql://127.0.0.1/test?pool_size=0", "must be a positive integer, not `0`"),
])
def test_bad_options_are_refused_before_connecting(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        open_store(url)


def test_no_server_is_one_line_store_error() -> None:
    with pytest.raises(StoreError, match="no postgresql server answers") as info:
        open_store("postgresql://postgres@127.0.0.1:1/test?connect_timeout=1")
    assert "\n" not in str(info.value)


def test_schema_version_and_forward_only_trigger(postgres_schema_url: str) -> None:
    store = PostgresApprovalStore(postgres_schema_url)
    schema = _schema(postgres_schema_url)
    try:
        service = ApprovalService(store, KeyRing.generate())
        approval, token = service.create("acme", H1)
        assert service.consume(token, tenant_id="acme", ir_hash=H1).success
        with _admin(postgres_schema_url) as conn:
            versions = dict(conn.execute(f'SELECT component, version FROM "{schema}".irgov_schema_version'))
            assert versions == {"approvals": SCHEMA_VERSION, "ledger": 4, "outbox": 1}
            with pytest.raises(Exception, match="only moves forward"):
                conn.execute(f"UPDATE \"{schema}\".irgov_approvals SET status = 'pending' WHERE approval_id = %s",
                             (approval.approval_id,))
    finally:
        store.close()


def test_a_version_2_ledger_gains_the_decision_details_and_keeps_its_decisions(postgres_schema_url: str) -> None:
    PostgresApprovalStore(postgres_schema_url).close()
    schema = _schema(postgres_schema_url)
    with _admin(postgres_schema_url) as conn:
        conn.execute(f'ALTER TABLE "{schema}".irgov_decisions DROP COLUMN snapshot, DROP COLUMN intent_summary, '
                     "DROP COLUMN step_count")
        conn.execute(f'ALTER TABLE "{schema}".irgov_approval_requests DROP COLUMN delivery, DROP COLUMN sealed_token, '
                     "DROP COLUMN claimed_by, DROP COLUMN claimed_us")
        conn.execute(f"UPDATE \"{schema}\".irgov_schema_version SET version = 2 WHERE component = 'ledger'")
        conn.execute(f"DELETE FROM \"{schema}\".irgov_schema_history WHERE component = 'ledger' AND version > 2")
        conn.execute(f"INSERT INTO \"{schema}\".irgov_decisions VALUES ('acme', %s, 'ESCALATE', 2, NULL, 5)", (H1,))
    with pytest.raises(StoreError, match=r"older schema \(ledger 2 -> 4\)"):
        PostgresApprovalStore(postgres_schema_url)
    store = PostgresApprovalStore(postgres_schema_url + "&auto_migrate=true")
    try:
        assert store.ledger.get_decision("acme", H1, with_snapshot=True) == DecisionEntry("acme", H1, "ESCALATE", 2,
                                                                                          None, 5)
        with _admin(postgres_schema_url) as conn:
            assert conn.execute(f"SELECT version FROM \"{schema}\".irgov_schema_version "
                                "WHERE component = 'ledger'").fetchone() == (4,)
    finally:
        store.close()


def test_refuses_a_newer_schema(postgres_schema_url: str) -> None:
    PostgresApprovalStore(postgres_schema_url).close()
    with _admin(postgres_schema_url) as conn:
        conn.execute(f"UPDATE \"{_schema(postgres_schema_url)}\".irgov_schema_version SET version = 99 "
                     "WHERE component = 'approvals'")
    with pytest.raises(StoreError, match=f"approvals schema version 99: this version knows up to {SCHEMA_VERSION}") as info:
        PostgresApprovalStore(postgres_schema_url)
    assert "\n" not in str(info.value)


def test_survives_a_restart_and_schemas_are_apart(postgres_schema_url: str, postgres_url: str) -> None:
    key = KeyRing.generate()
    first = ApprovalService(open_store(postgres_schema_url), key)
    approval, token = first.create("acme", H1)
    first.store.close()
    other_url = f"{postgres_url}?schema={_schema(postgres_schema_url)}_other"
    other = open_store(other_url)
    try:
        assert other.get(approval.approval_id) is None  # another schema is another store
    finally:
        other.close()
        with _admin(postgres_url) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{_schema(other_url)}" CASCADE')
    second = ApprovalService(open_store(postgres_schema_url), key)
    try:
        assert second.consume(token, tenant_id="acme", ir_hash=H1).success
    finally:
        second.store.close()


def _consume_in_child(store: PostgresApprovalStore, key_text: str, token: str, results: Any) -> None:
    service = ApprovalService(store, KeyRing.parse(key_text))
    results.put(service.consume(token, tenant_id="acme", ir_hash=H1).success)


def test_a_forked_child_opens_its_own_connections(postgres_schema_url: str) -> None:
    import multiprocessing

    key = KeyRing.generate()
    service = ApprovalService(PostgresApprovalStore(postgres_schema_url), key)
    try:
        _, first = service.create("acme", H1)
        _, second = service.create("acme", H1)
        ctx = multiprocessing.get_context("fork")
        results = ctx.Queue()
        child = ctx.Process(target=_consume_in_child, args=(service.store, key.to_text(), first, results))
        child.start()
        assert results.get(timeout=60) is True
        child.join(timeout=30)
        assert child.exitcode == 0
        # the parent's pooled connections still work after the child used and left its own
        assert service.consume(second, tenant_id="acme", ir_hash=H1).success
        assert not service.consume(first, tenant_id="acme", ir_hash=H1).success
    finally:
        service.store.close()
