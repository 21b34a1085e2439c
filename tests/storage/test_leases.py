"""Leader leases on SQLite, Redis and PostgreSQL: one holder at a time, handed over on release,
and taken over when the holding process is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.storage.leases import LocalLease, lease_for

KINDS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis), pytest.param("postgres", marks=pytest.mark.postgres)]

_HOLDER = """
import sys, time
from irgov_policy.storage.leases import lease_for
lease = lease_for(sys.argv[1], "sweeper", ttl=float(sys.argv[2]))
deadline = time.monotonic() + 20
while not lease.hold():
    if time.monotonic() > deadline:
        sys.exit("never held")
    time.sleep(0.05)
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture(params=KINDS)
def lease_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'approvals.db'}"
    elif request.param == "postgres":
        yield request.getfixturevalue("postgres_schema_url")
    else:
        client: Any = request.getfixturevalue("redis_client")
        assert client.ping()
        yield f"{request.getfixturevalue('redis_url')}?prefix={request.getfixturevalue('redis_prefix')}"


def _eventually(check: Any, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_one_holder_at_a_time_and_release_hands_over(lease_url: str) -> None:
    first, second = lease_for(lease_url, "sweeper", ttl=3), lease_for(lease_url, "sweeper", ttl=3)
    other = lease_for(lease_url, "relay", ttl=3)
    try:
        assert first.hold() and first.hold()  # renewal keeps it
        assert not second.hold()
        assert other.hold()  # another name is another lease
        first.release()
        assert second.hold() and not first.hold()
    finally:
        for lease in (first, second, other):
            lease.close()


def test_a_killed_holder_is_replaced(lease_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, lease_url, "1"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    successor = lease_for(lease_url, "sweeper", ttl=1)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held", holder.stderr
        assert not successor.hold()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert _eventually(successor.hold), "no process took the lease over"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        successor.close()


def test_a_process_alone_with_its_store_always_leads() -> None:
    lease = lease_for("memory://", "sweeper")
    assert isinstance(lease, LocalLease) and lease.hold()


def test_the_sqlite_lease_file_names_its_holder(tmp_path: Path) -> None:
    lease = lease_for(f"sqlite:///{tmp_path / 'approvals.db'}", "sweeper")
    assert lease.hold()
    try:
        assert (tmp_path / "approvals.db.sweeper.lease").read_text().strip().endswith(f":{os.getpid()}")
    finally:
        lease.close()
