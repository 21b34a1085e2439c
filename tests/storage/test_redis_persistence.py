"""A Redis approval store asks its server whether approvals survive a restart: the shared test
server keeps no persistence (a warning, once), `require_durable_redis` refuses it, a server with
an append-only file passes quietly, and CONFIG denied by an ACL falls back to INFO persistence."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.approvals.factory import open_store
from irgov_policy.approvals.store_redis import RedisApprovalStore
from irgov_policy.config import GovernanceConfig
from irgov_policy.errors import StoreError
from irgov_policy.kernel.build import build_approvals
from irgov_policy.storage import redis_persistence

pytestmark = pytest.mark.redis

LOGGER = "irgov_policy.storage.redis_persistence"


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    # Warnings are once per server and process: an earlier test's store must not hide this one's.
    monkeypatch.setattr(redis_persistence, "_warned", set())


def _store_url(redis_url: str, prefix: str) -> str:
    return f"{redis_url}?prefix={prefix}"


def test_a_server_without_persistence_is_a_warning_once(redis_url: str, redis_prefix: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        first = open_store(_store_url(redis_url, redis_prefix))
        second = open_store(_store_url(redis_url, redis_prefix))
    try:
        warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
        assert len(warnings) == 1, warnings
        assert "keeps no persistence (save is empty and appendonly is no)" in warnings[0]
        assert "approvals, their ledger entries and undelivered events are lost" in warnings[0]
        assert "require_durable_redis" in warnings[0]
        assert isinstance(first, RedisApprovalStore) and first.persistence is not None
        assert first.persistence.durable is False
    finally:
        first.close()
        second.close()


def test_require_durable_redis_refuses_that_server_in_one_line(redis_url: str, redis_prefix: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(_store_url(redis_url, redis_prefix), require_durable_redis=True)
    message = str(info.value)
    assert "\n" not in message and "keeps no persistence" in message and "require_durable_redis is set" in message
    config = GovernanceConfig().with_overrides(approval_store=_store_url(redis_url, redis_prefix),
                                               require_durable_redis=True)
    with pytest.raises(StoreError, match="require_durable_redis is set"):  # the kernel's wiring passes it on
        build_approvals(config, needs_key=False)


@pytest.fixture
def acl_user(redis_client: Any) -> Iterator[Any]:
    """Makes users of the real server with some commands denied; removed afterwards."""
    made: list[str] = []

    def make(*denied: str) -> str:
        name = f"irgov-test-{uuid.uuid4().hex[:8]}"
        password = uuid.uuid4().hex
        redis_client.acl_setuser(name, enabled=True, passwords=[f"+{password}"], keys=["~*"],
                                 commands=["+@all", *(f"-{c}" for c in denied)])
        made.append(name)
        return f"redis://{name}:{password}@"

    yield make
    for name in made:
        redis_client.acl_deluser(name)


def test_config_denied_falls_back_to_info_and_cannot_confirm(redis_url: str, redis_prefix: str, acl_user: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    server = redis_url.removeprefix("redis://")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        store = open_store(_store_url(acl_user("config") + server, redis_prefix))
        store.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1 and "cannot confirm the server keeps its data" in warnings[0]
    assert "INFO persistence shows no append-only file" in warnings[0]
    with pytest.raises(StoreError, match="may keep no persistence .*CONFIG GET is refused .*and so is INFO"):
        open_store(_store_url(acl_user("config", "info") + server, redis_prefix), require_durable_redis=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_with_an_append_only_file_passes_quietly(tmp_path: Path, redis_url: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary to start a server with an append-only file")
    port = _free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "yes", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the private redis-server did not start"
                time.sleep(0.05)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            store = open_store(url, require_durable_redis=True)
        assert isinstance(store, RedisApprovalStore) and store.persistence is not None
        assert store.persistence.durable is True and store.persistence.detail.startswith("appendonly yes")
        store.close()
        assert not [r for r in caplog.records if r.name == LOGGER]
    finally:
        server.terminate()
        server.wait(10)


def test_an_unreachable_server_is_refused_only_when_durability_is_required() -> None:
    port = _free_port()
    store = open_store(f"redis://127.0.0.1:{port}/0")  # nothing answers: the first command will say so
    assert isinstance(store, RedisApprovalStore) and store.persistence is None
    store.close()
    with pytest.raises(StoreError, match="persistence cannot be read"):
        open_store(f"redis://127.0.0.1:{port}/0", require_durable_redis=True)
