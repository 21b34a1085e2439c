"""Versioned schema migrations for the SQL backends: numbered steps, one transaction each.

A database holds several *components* (the approvals table, the ledger's tables, the outbox
table, the relay's delivery marks); each has its own version in `irgov_schema_version
(component, version)` and an ordered list of `Step`s, step `n` taking it from version `n - 1` to
`n`. A step runs in its own transaction together with the update of its component's version and a
row of `irgov_schema_history`, so a crash leaves the database at one version or the next, never
between; the version is re-read inside that transaction, so two processes upgrading at once apply
each step once.

`check` is what a process does at start-up: a component newer than this code knows is refused (a
rollback of the package must not write to a schema it does not understand); an older one is
upgraded when the backend allows it (`upgrade_allowed`), refused with one line naming
`irgov db upgrade` otherwise. A database with no version at all is new: it is created, which is
installing, not migrating. Redis records are hashes whose new fields are optional, and need no
migration at all.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ..errors import StoreError

__all__ = [
    "TRUE_WORDS",
    "Component",
    "ComponentStatus",
    "Step",
    "check",
    "parse_auto_migrate",
    "postgres_versions",
    "split_sqlite_script",
    "sqlite_versions",
    "status",
    "upgrade_postgres",
    "upgrade_sqlite",
]

#: where a database records what it is at, and what was applied when
_VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS irgov_schema_version "
                  "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
_HISTORY_TABLE = ("CREATE TABLE IF NOT EXISTS irgov_schema_history "
                  "(component TEXT NOT NULL, version INTEGER NOT NULL, summary TEXT NOT NULL, "
                  "applied_us BIGINT NOT NULL, PRIMARY KEY (component, version))")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Step:
    """Version `version` of a component: `sql` is one script (SQLite statements are split on
    complete statements, PostgreSQL runs it as one)."""

    version: int
    summary: str
    sql: str


@dataclass(frozen=True)
class Component:
    name: str
    steps: tuple[Step, ...]

    def __post_init__(self) -> None:
        numbers = [s.version for s in self.steps]
        if numbers != list(range(1, len(numbers) + 1)):  # a wiring mistake, found by any test
            raise ValueError(f"the steps of `{self.name}` must be numbered 1..n in order, not {numbers}")

    @property
    def latest(self) -> int:
        return len(self.steps)


@dataclass(frozen=True)
class ComponentStatus:
    """One line of `irgov db status`: what the database is at, what this code knows."""

    component: str
    found: int
    latest: int

    @property
    def state(self) -> str:
        if self.found > self.latest:
            return "newer than this version"
        if self.found == self.latest:
            return "up to date"
        return "not created" if self.found == 0 else "upgrade needed"

    def to_dict(self) -> dict[str, Any]:
        return {"component": self.component, "version": self.found, "code_version": self.latest,
                "state": self.state}


def parse_auto_migrate(options: Mapping[str, str], *, default: bool, what: str) -> bool:
    """The `auto_migrate` option of a store address (`true`/`false`, `1`/`0`, `yes`/`no`)."""
    text = options.get("auto_migrate")
    if text is None:
        return default
    word = text.strip().lower()
    if word not in TRUE_WORDS | _FALSE_WORDS:
        raise StoreError(f"{what} option `auto_migrate` must be true or false, not `{text}`")
    return word in TRUE_WORDS


def status(components: Iterable[Component], found: Mapping[str, int]) -> list[ComponentStatus]:
    return [ComponentStatus(c.name, found.get(c.name, 0), c.latest) for c in components]


def check(where: str, components: Sequence[Component], found: Mapping[str, int], *,
          upgrade_allowed: bool, setting: str) -> bool:
    """At start-up: raise `StoreError` for a newer schema, or for an older one that may not be
    upgraded here; True when steps are to be applied (a new database, or an allowed upgrade)."""
    rows = status(components, found)
    for row in rows:
        if row.found > row.latest:
            raise StoreError(f"{where} has {row.component} schema version {row.found}: this version knows up to "
                             f"{row.latest}; upgrade the package or use another database")
    behind = [r for r in rows if r.found < r.latest]
    if not behind:
        return False
    if not any(found.get(c.name, 0) for c in components) or upgrade_allowed:
        return True
    summary = ", ".join(f"{r.component} {r.found} -> {r.latest}" for r in behind)
    raise StoreError(f"{where} has an older schema ({summary}): run `irgov db upgrade`, or set {setting}")


# -- SQLite ------------------------------------------------------------------------------------


def split_sqlite_script(script: str) -> list[str]:
    """Statements of a script, keeping trigger bodies whole (`executescript` would commit)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def sqlite_versions(conn: sqlite3.Connection) -> dict[str, int]:
    present = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'irgov_schema_version'"
                           ).fetchone()
    if present is None:
        return {}
    return {str(c): int(v) for c, v in conn.execute("SELECT component, version FROM irgov_schema_version")}


def upgrade_sqlite(conn: sqlite3.Connection, components: Sequence[Component], *,
                   progress: Callable[[str, Step], None] | None = None) -> list[tuple[str, int]]:
    """Apply every missing step on `conn` (autocommit mode), each in its own `BEGIN IMMEDIATE`
    transaction; the `(component, version)` pairs applied by this call."""
    applied: list[tuple[str, int]] = []
    for component in components:
        for step in component.steps:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(_VERSION_TABLE)
                conn.execute(_HISTORY_TABLE)
                if _sqlite_version(conn, component.name) >= step.version:
                    conn.execute("COMMIT")
                    continue
                if progress is not None:
                    progress(component.name, step)
                for statement in split_sqlite_script(step.sql):
                    conn.execute(statement)
                _record(conn, "?", component.name, step)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            applied.append((component.name, step.version))
    return applied


def _sqlite_version(conn: sqlite3.Connection, component: str) -> int:
    row = conn.execute("SELECT version FROM irgov_schema_version WHERE component = ?", (component,)).fetchone()
    return 0 if row is None else int(row[0])


def _record(conn: Any, mark: str, component: str, step: Step) -> None:
    conn.execute(f"INSERT INTO irgov_schema_version (component, version) VALUES ({mark}, {mark}) "
                 "ON CONFLICT (component) DO UPDATE SET version = excluded.version", (component, step.version))
    conn.execute(f"INSERT INTO irgov_schema_history (component, version, summary, applied_us) "
                 f"VALUES ({mark}, {mark}, {mark}, {mark}) ON CONFLICT (component, version) DO NOTHING",
                 (component, step.version, step.summary, time.time_ns() // 1000))


# -- PostgreSQL --------------------------------------------------------------------------------


def postgres_versions(conn: Any, schema: str) -> dict[str, int]:
    present = conn.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
                           "AND table_name = 'irgov_schema_version'", (schema,)).fetchone()
    if present is None:
        return {}
    return {str(c): int(v) for c, v in conn.execute("SELECT component, version FROM irgov_schema_version")}


def upgrade_postgres(transaction: Callable[[], AbstractContextManager[Any]], components: Sequence[Component], *,
                     lock_key: int, prepare: Callable[[Any], None],
                     progress: Callable[[str, Step], None] | None = None) -> list[tuple[str, int]]:
    """Apply every missing step, each in one transaction of `transaction()` that first takes the
    advisory lock `lock_key` (processes starting at once wait for each other) and runs `prepare`
    (creating the schema itself)."""
    applied: list[tuple[str, int]] = []
    for component in components:
        for step in component.steps:
            with transaction() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
                prepare(conn)
                conn.execute(_VERSION_TABLE)
                conn.execute(_HISTORY_TABLE)
                row = conn.execute("SELECT version FROM irgov_schema_version WHERE component = %s",
                                   (component.name,)).fetchone()
                if row is not None and int(row[0]) >= step.version:
                    continue
                if progress is not None:
                    progress(component.name, step)
                conn.execute(step.sql)
                _record(conn, "%s", component.name, step)
            applied.append((component.name, step.version))
    return applied

