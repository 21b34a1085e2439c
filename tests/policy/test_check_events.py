"""`irgov check` is side-effect free unless an outbox or sinks are configured, and a batch with
events on commits each chunk's events before it prints the chunk's decisions. Real processes
in a temporary working directory."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from irgov_policy.cli.check_cmd import CHUNK_LINES

from .conftest import REPO

EXAMPLES = REPO / "examples"
IRGOV = [sys.executable, "-c", "from irgov_policy.cli import main; main()"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    env.update(extra)
    return env


def irgov(cwd: Path, *args: str, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*IRGOV, *args, "--budget-ms", "60000"], cwd=cwd, input=stdin, capture_output=True,
                          env=_env(**env), timeout=300)


def batch(lines: int, action: str = "dns.update_records", provider: str = "dns.cloudflare") -> bytes:
    return b"".join(json.dumps({"tenant_id": "t_check", "request_id": f"r{i}", "steps": [
        {"step_id": "s1", "action": action, "provider": provider, "resource": f"zone/{i}", "params": {"n": i},
         "idempotency_key": f"k{i}"}]}).encode() + b"\n" for i in range(lines))


def rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM irgov_outbox").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("example", ["pass", "escalate", "reject"])
def test_check_leaves_nothing_behind_by_default(tmp_path: Path, example: str) -> None:
    done = irgov(tmp_path, "check", str(EXAMPLES / f"{example}.json"))
    assert done.returncode in (0, 3, 4), done.stderr
    done = irgov(tmp_path, "check", "--format", "jsonl", "-", stdin=batch(5))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 5
    assert list(tmp_path.iterdir()) == []


def test_no_events_wins_over_a_configured_outbox_and_sinks(tmp_path: Path) -> None:
    sink = tmp_path / "prod-events.jsonl"
    done = irgov(tmp_path, "check", "--no-events", str(EXAMPLES / "reject.json"),
                 IRGOV_OUTBOX=f"sqlite:///{tmp_path}/outbox.db", IRGOV_EVENT_SINKS=f"jsonl://{sink}")
    assert done.returncode == 4, done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("how", ["flag", "environment", "config file"])
def test_a_configured_outbox_records_the_decisions(tmp_path: Path, how: str) -> None:
    db = tmp_path / "events" / "outbox.db"
    url = f"sqlite:///{db}"
    args: list[str] = ["check", "--format", "jsonl", "-"]
    env: dict[str, str] = {}
    if how == "flag":
        args = ["check", "--outbox", url, "--format", "jsonl", "-"]
    elif how == "environment":
        env["IRGOV_OUTBOX"] = url
    else:
        (tmp_path / "irgov.yaml").write_text(f"outbox: {url}\n")
        args = ["check", "--config", str(tmp_path / "irgov.yaml"), "--format", "jsonl", "-"]
    done = irgov(tmp_path, *args, stdin=batch(7), **env)
    assert done.returncode == 0, done.stderr
    assert rows(db) == 7


def test_configured_sinks_receive_the_events(tmp_path: Path) -> None:
    sink = tmp_path / "events.jsonl"
    done = irgov(tmp_path, "check", str(EXAMPLES / "escalate.json"), IRGOV_EVENT_SINKS=f"jsonl://{sink}",
                 IRGOV_OUTBOX="memory://")
    assert done.returncode == 3, done.stderr
    assert [json.loads(line)["type"] for line in sink.read_text().splitlines()] == ["ir.validated_escalate"]


def test_a_chunks_events_are_committed_before_its_lines_are_printed(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    lines = 3 * CHUNK_LINES
    child = subprocess.Popen([*IRGOV, "check", "--outbox", f"sqlite:///{db}", "--format", "jsonl", "-",
                              "--budget-ms", "60000"], cwd=tmp_path, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(batch(lines))
    child.stdin.close()
    first = child.stdout.readline()
    assert json.loads(first)["status"] == "ESCALATE"
    # the first line is out: its whole chunk is already on disk, seen from another connection
    assert rows(db) >= CHUNK_LINES
    rest = child.stdout.read()
    child.stdout.close()
    assert child.wait(300) == 0, child.stderr.read() if child.stderr else ""
    if child.stderr is not None:
        child.stderr.close()
    assert len(rest.splitlines()) == lines - 1
    assert rows(db) == lines
