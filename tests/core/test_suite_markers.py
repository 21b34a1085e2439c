"""The suite's own promises: `-m "not redis"` runs nothing that needs Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# One module whose tests take `redis_url` as an argument, one whose store fixture reaches Redis
# for one of its parameters only.
MODULES = ["tests/approvals/test_stores.py", "tests/approvals/test_contract.py"]


def _pytest(*args: str, redis_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if redis_url is not None:
        env["IRGOV_TEST_REDIS_URL"] = redis_url
        env["IRGOV_REQUIRE_REDIS"] = "1"  # a test that still reaches Redis fails instead of skipping
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_not_redis_deselects_every_test_that_needs_redis() -> None:
    """With no Redis server and Redis required, every test left by `-m "not redis"` passes: none
    of them reaches Redis."""
    done = _pytest("-m", "not redis", *MODULES, redis_url="redis://127.0.0.1:1/15")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " deselected" in done.stdout.splitlines()[-1]


def test_redis_mark_comes_from_the_fixture() -> None:
    done = _pytest("--collect-only", "-m", "redis", *MODULES)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    selected = [line for line in done.stdout.splitlines() if "::" in line]
    # marked because it takes `redis_url`, not by a decorator
    assert "tests/approvals/test_stores.py::test_redis_purge_removes_every_key" in selected
    # marked through the store fixture's redis parameter
    assert "tests/approvals/test_contract.py::test_single_use[redis]" in selected
    assert not [line for line in selected if "[memory]" in line or "[sqlite]" in line]
