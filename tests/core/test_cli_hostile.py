"""Finding: the CLI read without a bound and printed tracebacks. `irgov check /dev/zero` or an
endless stdin read everything before checking the size; `hash`/`diff` with a 5,000-digit integer
or a lone surrogate, `approvals create --tenant` with invalid UTF-8 and `events tail -n` with a
huge number printed tracebacks. Each now prints one line and exits 1, as docs/cli.md says. The
program runs as a real process, fed by real endless streams."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

IRGOV = [sys.executable, "-c", "from irgov_policy.cli import main; main()"]
HASH = "sha256:" + "0" * 64


def _run(args: list[str | bytes], cwd: Path, stdin: int | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    return subprocess.run([*IRGOV, *args], cwd=cwd, env=env, stdin=stdin, capture_output=True, timeout=120)


def _assert_one_line_error(result: subprocess.CompletedProcess[bytes], expected: str) -> None:
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 1, err
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("irgov: error: ") and expected in err, err


@pytest.mark.parametrize("command", ["check", "hash"])
def test_dev_zero_is_refused_at_the_limit_not_read_whole(command: str, tmp_path: Path) -> None:
    _assert_one_line_error(_run([command, "/dev/zero"], tmp_path), "`/dev/zero` exceeds the limit of 8388608 bytes")


def test_an_endless_stdin_is_refused_at_the_limit(tmp_path: Path) -> None:
    with subprocess.Popen(["cat", "/dev/zero"], stdout=subprocess.PIPE) as endless:
        assert endless.stdout is not None
        result = _run(["check", "-"], tmp_path, stdin=endless.stdout.fileno())
        endless.kill()
    _assert_one_line_error(result, "`-` exceeds the limit of 8388608 bytes")


@pytest.mark.parametrize(("content", "expected"), [
    ('{"tenant_id": ' + "9" * 5000 + "}", "/tenant_id: integer of 5000 digits"),
    ('{"tenant_id": "\\ud800"}', "/tenant_id: string contains a lone utf-16 surrogate"),
])
@pytest.mark.parametrize("command", ["hash", "diff", "check"])
def test_hostile_json_is_one_line(command: str, content: str, expected: str, tmp_path: Path) -> None:
    (tmp_path / "ir.json").write_text(content)
    args: list[str | bytes] = [command, "ir.json"] + (["ir.json"] if command == "diff" else [])
    result = _run(args, tmp_path)
    if command == "check":  # an IR that is not strict JSON is a REJECT decision, exit 4
        assert result.returncode == 4 and "Traceback" not in result.stderr.decode(), result.stderr
        assert expected in result.stdout.decode()
    else:
        _assert_one_line_error(result, expected)


def test_an_invalid_utf8_tenant_is_refused_in_one_line(tmp_path: Path) -> None:
    result = _run(["approvals", "break-glass", "--by", "oncall", "--reason", "r", "--tenant", b"\xff\xfe",
                   "--ir-hash", HASH], tmp_path)
    _assert_one_line_error(result, "`tenant_id` must be valid unicode text")


@pytest.mark.parametrize("lines", ["99999999999999999999", "0", "-1", "many"])
def test_events_tail_with_an_impossible_count_is_one_line(lines: str, tmp_path: Path) -> None:
    _assert_one_line_error(_run(["events", "tail", "-n", lines], tmp_path), "invalid value for '-n' / '--lines'")


def test_a_usage_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    _assert_one_line_error(_run(["no-such-verb"], tmp_path), "no such command `no-such-verb`".replace("`", "'"))
    _assert_one_line_error(_run(["hash"], tmp_path), "missing argument")
