"""A Redis server of the test's own, on a free port: for attacks on the server itself (`CLIENT
PAUSE`), which must never reach the shared server other tests use."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .live import free_port


@contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    """The `redis://` address of a fresh redis-server; skips when none is installed, fails
    instead under `IRGOV_REQUIRE_REDIS=1`. Stopped (terminate, then kill) afterwards."""
    executable = shutil.which("redis-server")
    if executable is None:
        message = "redis-server is not installed: the paused-server test starts one of its own"
        if os.environ.get("IRGOV_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    import redis

    port = free_port()
    argv = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(workdir)]
    with (workdir / "redis.log").open("w") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if redis.Redis.from_url(url, socket_timeout=1).ping():
                    break
            except redis.RedisError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start: " + (workdir / "redis.log").read_text())
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
