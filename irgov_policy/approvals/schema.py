"""The schema of a configured database, read and upgraded by `irgov db status` / `irgov db upgrade`.

`schema_status` reads versions without changing anything (a missing SQLite file stays missing);
`upgrade_schema` applies the missing steps of every component with progress, one transaction
per step (storage.migrations). The approval store's address decides the backend; the outbox's
SQLite file has its own components (events.outbox_sqlite). Redis and memory have nothing to
migrate: a Redis record is a hash, and a field a newer version adds is optional when read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StoreError
from ..events.outbox_sqlite import OUTBOX_FILE_COMPONENTS
from ..storage import StoreURL, make_private_file
from ..storage.migrations import (
    Component,
    ComponentStatus,
    Step,
    check,
    sqlite_versions,
    status,
    upgrade_sqlite,
)
from .schema_sqlite import SQLITE_COMPONENTS

__all__ = ["SchemaReport", "schema_status", "upgrade_schema"]

#: told (database, component, step) before each step is applied
Progress = Callable[[str, str, Step], None]
NO_MIGRATIONS = {
    "memory": "in memory: nothing is kept, nothing to migrate",
    "redis": "Redis hashes: a field a newer version adds is optional when read, nothing to migrate",
}


@dataclass(frozen=True)
class SchemaReport:
    """What one database holds: `components` per component, or `note` when it has no schema."""

    what: str
    address: str
    components: list[ComponentStatus] = field(default_factory=list)
    note: str | None = None

    @property
    def needs_upgrade(self) -> bool:
        return any(c.found < c.latest for c in self.components)

    def to_dict(self) -> dict[str, object]:
        return {"what": self.what, "address": self.address, "note": self.note,
                "components": [c.to_dict() for c in self.components]}


def _kind(address: StoreURL) -> str:
    return "redis" if address.is_redis else address.scheme


def _sqlite_read(path: Path, components: Sequence[Component]) -> list[ComponentStatus]:
    if not path.exists():
        return status(components, {})
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        try:
            return status(components, sqlite_versions(conn))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read sqlite database `{path}`: {exc}") from None


def _labelled(progress: Progress | None, label: str) -> Callable[[str, Step], None] | None:
    if progress is None:
        return None
    return lambda component, step: progress(label, component, step)


def _sqlite_upgrade(path: Path, components: Sequence[Component], progress: Callable[[str, Step], None] | None
                    ) -> None:
    try:
        make_private_file(path)
    except OSError as exc:
        raise StoreError(f"cannot create the directory of `{path}`: {exc.strerror or exc}") from None
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            check(f"sqlite database `{path}`", components, sqlite_versions(conn), upgrade_allowed=True,
                  setting="nothing")
            upgrade_sqlite(conn, components, progress=progress)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot upgrade sqlite database `{path}`: {exc}") from None


def _store_url(url: str) -> StoreURL:
    return StoreURL.parse(url, what="approval store")


def schema_status(store_url: str, outbox_url: str | None) -> list[SchemaReport]:
    """The approval store's schema, then the outbox's when it is a SQLite file of its own."""
    address = _store_url(store_url)
    reports = []
    if address.scheme == "sqlite":
        reports.append(SchemaReport("approval store", str(address),
                                    _sqlite_read(address.sqlite_path(), SQLITE_COMPONENTS)))
    elif address.is_postgres:
        from .schema_postgres import POSTGRES_COMPONENTS

        reports.append(SchemaReport("approval store", str(address),
                                    status(POSTGRES_COMPONENTS, _postgres_found(address, "postgresql store"))))
    else:
        reports.append(SchemaReport("approval store", str(address), note=NO_MIGRATIONS.get(_kind(address))))
    outbox = _outbox_file(outbox_url, address)
    if outbox is not None:
        reports.append(SchemaReport("outbox", StoreURL.for_sqlite_file(outbox).text,
                                    _sqlite_read(outbox, OUTBOX_FILE_COMPONENTS)))
    pg_outbox = _outbox_schema(outbox_url)
    if pg_outbox is not None:
        from ..events.outbox_postgres import PG_OUTBOX_COMPONENTS

        reports.append(SchemaReport("outbox", str(pg_outbox),
                                    status(PG_OUTBOX_COMPONENTS, _postgres_found(pg_outbox, "postgresql outbox"))))
    return reports


def _postgres_found(address: StoreURL, what: str) -> dict[str, int]:
    from ..storage.migrations import postgres_versions
    from ..storage.postgres_client import connect, postgres_schema

    schema = postgres_schema(address, what=what)
    conn = connect(address, what=what)
    try:
        return postgres_versions(conn, schema)
    except Exception as exc:  # psycopg.Error; psycopg is optional
        raise StoreError(f"{what} `{address}`: cannot read the schema version: {exc}") from None
    finally:
        conn.close()


def _outbox_schema(outbox_url: str | None) -> StoreURL | None:
    """The outbox's PostgreSQL schema (its relay tables are its own, even beside a store)."""
    if not outbox_url or outbox_url.strip() in ("memory:", "none"):
        return None
    address = StoreURL.parse(outbox_url.strip(), what="outbox")
    return address if address.is_postgres else None


def upgrade_schema(store_url: str, outbox_url: str | None, progress: Progress | None = None) -> None:
    """Bring the approval store's schema (and the outbox file's) to this version's; a newer
    schema is refused. Running it again applies nothing."""
    address = _store_url(store_url)
    if address.scheme == "sqlite":
        address.check_options(("auto_migrate",), what="sqlite store")
        _sqlite_upgrade(address.sqlite_path(), SQLITE_COMPONENTS, _labelled(progress, f"approval store {address}"))
    elif address.is_postgres:
        from .store_postgres import PostgresApprovalStore

        PostgresApprovalStore(address, upgrade=True, progress=_labelled(progress, f"approval store {address}")).close()
    outbox = _outbox_file(outbox_url, address)
    if outbox is not None:
        label = f"outbox {StoreURL.for_sqlite_file(outbox).text}"
        _sqlite_upgrade(outbox, OUTBOX_FILE_COMPONENTS, _labelled(progress, label))
    pg_outbox = _outbox_schema(outbox_url)
    if pg_outbox is not None:
        from ..errors import EventError
        from ..events.outbox_postgres import PostgresOutbox

        try:
            PostgresOutbox(pg_outbox, upgrade=True, progress=_labelled(progress, f"outbox {pg_outbox}")).close()
        except EventError as exc:
            raise StoreError(str(exc)) from None


def _outbox_file(outbox_url: str | None, store: StoreURL) -> Path | None:
    """The outbox's SQLite file, unless it is the store's own file (already covered)."""
    if not outbox_url or outbox_url.strip() in ("memory:", "none"):
        return None
    address = StoreURL.parse(outbox_url.strip(), what="outbox")
    if address.scheme != "sqlite":
        return None
    path = address.sqlite_path().resolve()
    if store.scheme == "sqlite" and store.sqlite_path().resolve() == path:
        return None
    return path
