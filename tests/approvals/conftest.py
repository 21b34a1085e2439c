"""Store fixtures: one contract, four stores (memory, SQLite file, the real Redis and PostgreSQL servers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The redis and postgres parameters carry their mark: they reach the server at run time only.
STORES = ["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis),
          pytest.param("postgres", marks=pytest.mark.postgres)]


def redis_store_url(redis_url: str, prefix: str) -> str:
    # The outbox stream lives under the test's prefix too, so cleanup removes it.
    return f"{redis_url}?prefix={prefix}&outbox={prefix}outbox"


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty store of each kind."""
    kind = request.param
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'approvals.db'}"
    elif kind == "postgres":
        yield request.getfixturevalue("postgres_schema_url")  # skips or fails when postgresql is down
    else:
        client: Any = request.getfixturevalue("redis_client")  # skips or fails when redis is down
        prefix = request.getfixturevalue("redis_prefix")
        redis_url = request.getfixturevalue("redis_url")
        assert client.ping()
        yield redis_store_url(redis_url, prefix)
