"""Finding: the server log lost the cause of a 500 (the one-line formatter dropped `exc_info`).
`irgov serve` now logs the exception's type, message and stack, once, and still tells the client
nothing of it. The fault is injected into a real `irgov serve` process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from .conftest import API_KEYS, KEYS
from .live import free_port, running

INJECT = """
from irgov_policy.kernel import Governance
def pack_status(self):
    raise RuntimeError("injected fault 7d41")
Governance.pack_status = pack_status
from irgov_policy.cli import main
main()
"""


def test_a_500_is_logged_with_its_cause_once(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    env["IRGOV_API_KEYS"] = ",".join(API_KEYS)
    argv = [sys.executable, "-c", INJECT, "serve", "--port", str(port), "--log-level", "warning"]
    with running(argv, cwd=tmp_path, env=env, health_url=f"http://127.0.0.1:{port}/health"):
        response = httpx.get(f"http://127.0.0.1:{port}/packs", headers={"Authorization": f"Bearer {KEYS['root']}"})
    assert response.status_code == 500
    assert response.json()["detail"] == "the server failed to handle the request"
    assert "7d41" not in response.text
    log = (tmp_path / "server.log").read_text()
    assert log.count("irgov: error: unexpected error while handling a request") == 1, log
    assert log.count("RuntimeError: injected fault 7d41") == 1, log
    assert "Traceback (most recent call last):" in log and "in pack_status" in log, log


def test_a_command_still_prints_one_line_per_record(tmp_path: Path) -> None:
    """Outside the server a logged exception stays one line (no stack in a command's output)."""
    import logging

    from irgov_policy.cli._common import OneLineFormatter

    try:
        raise ValueError("cause")
    except ValueError:
        record = logging.LogRecord("irgov_policy.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert OneLineFormatter().format(record) == "irgov: error: failed"
