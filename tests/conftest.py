"""Shared fixtures. Redis tests use the real server (db 15 of 127.0.0.1:6379, or
`IRGOV_TEST_REDIS_URL`); they skip when it does not answer, except under IRGOV_REQUIRE_REDIS=1
(set by CI), where they fail instead.

Every test that uses the `redis_url` fixture, directly or through another fixture, is marked
`redis` at collection, so `-m "not redis"` deselects it. A fixture that reaches Redis only for
one of its parameters (`request.getfixturevalue`) gives that parameter the mark itself
(`pytest.param("redis", marks=pytest.mark.redis)`); a test that reaches `redis_url` without the
mark fails, so none is missed.

PostgreSQL tests work the same way with `postgres_url` (database `test` of 127.0.0.1:5432, or
`IRGOV_TEST_POSTGRES_URL`), the `postgres` mark and IRGOV_REQUIRE_POSTGRES=1; `postgres_schema_url`
is the address of a schema unique to one test, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

REDIS_URL = os.environ.get("IRGOV_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("IRGOV_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_required() -> bool:
    return os.environ.get("IRGOV_REQUIRE_POSTGRES") == "1"


def _redis_required() -> bool:
    return os.environ.get("IRGOV_REQUIRE_REDIS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.redis)
        if "postgres_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, _redis_server: str) -> str:
    """URL of a live Redis server (db 15 by default); skips or fails when none answers."""
    if request.node.get_closest_marker("redis") is None:
        pytest.fail(f"`{request.node.nodeid}` reaches redis without the `redis` mark: "
                    "give its redis parameter `marks=pytest.mark.redis`")
    return _redis_server


@pytest.fixture(scope="session")
def _redis_server() -> str:
    try:
        import redis
    except ImportError:  # pragma: no cover - the test extra installs redis
        if _redis_required():
            pytest.fail("IRGOV_REQUIRE_REDIS=1 but the `redis` package is not installed")
        pytest.skip("the `redis` package is not installed")
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        client.close()
    except Exception as exc:
        message = f"no redis server answers at {REDIS_URL}: {exc}"
        if _redis_required():
            pytest.fail(f"IRGOV_REQUIRE_REDIS=1 and {message}")
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to one test, so tests never see each other's keys."""
    return f"irgov-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_client(redis_url: str, redis_prefix: str) -> Iterator[Any]:
    """A client on the test server; every key under `redis_prefix` is deleted afterwards."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    for key in client.scan_iter(match=redis_prefix + "*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, _postgres_server: str) -> str:
    """URL of a live PostgreSQL database (`test`); skips or fails when none answers."""
    if request.node.get_closest_marker("postgres") is None:
        pytest.fail(f"`{request.node.nodeid}` reaches postgresql without the `postgres` mark: "
                    "give its postgres parameter `marks=pytest.mark.postgres`")
    return _postgres_server


@pytest.fixture(scope="session")
def _postgres_server() -> str:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - the test extra installs psycopg
        if _postgres_required():
            pytest.fail("IRGOV_REQUIRE_POSTGRES=1 but the `psycopg` package is not installed")
        pytest.skip("the `psycopg` package is not installed")
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=2).close()
    except Exception as exc:
        message = f"no postgresql server answers at {POSTGRES_URL}: {str(exc).strip().splitlines()[0]}"
        if _postgres_required():
            pytest.fail(f"IRGOV_REQUIRE_POSTGRES=1 and {message}")
        pytest.skip(message)
    return POSTGRES_URL


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """The address of a schema unique to one test (the store creates it); dropped afterwards."""
    import psycopg

    schema = f"irgov_test_{uuid.uuid4().hex[:12]}"
    yield f"{postgres_url}?schema={schema}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
