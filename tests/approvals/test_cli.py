"""`irgov approvals ...` end to end on a SQLite store file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from irgov_policy.approvals import KEY_ENV_VAR, KeyRing
from irgov_policy.cli import main

from .helpers import H1, H2

BY = ("--by", "alice", "--reason", "incident 42")


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv(KEY_ENV_VAR, KeyRing.generate().to_text())
    monkeypatch.setenv("IRGOV_OUTBOX", f"sqlite:///{tmp_path / 'outbox.db'}")
    monkeypatch.delenv("IRGOV_EVENT_SINKS", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
        result = runner.invoke(main, ["approvals", *args], input=input, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return invoke


def test_create_consume_flow_on_the_default_store(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("break-glass", "--tenant", "acme", "--ir-hash", H1, "--ttl", "120", "--by", "alice",
                         "--reason", "incident 42", "--format", "json")
    assert code == 0, err
    created = json.loads(out)
    assert created["token"].startswith("irgap_") and created["status"] == "pending"
    assert (tmp_path / ".irgov" / "approvals.db").exists()  # the default store, directory created
    token = created["token"]

    code, out, _ = run("consume", "--tenant", "acme", "--ir-hash", H2, "--token", token, "--format", "json")
    assert code == 1 and json.loads(out)["reason"] == "ir_hash_mismatch"
    code, out, _ = run("consume", "--tenant", "acme", "--ir-hash", H1, "--token", "-", "--by", "bob",
                       "--format", "json", input=token + "\n")
    assert code == 0
    assert json.loads(out) == {"success": True, "status": "consumed", "reason": None,
                               "approval_id": created["approval"]["approval_id"]}
    code, out, _ = run("consume", "--tenant", "acme", "--ir-hash", H1, "--token", token)
    assert code == 1 and "already_consumed" in out

    code, out, _ = run("get", created["approval"]["approval_id"], "--tenant", "acme", "--format", "json")
    got = json.loads(out)
    assert code == 0 and got["status"] == "consumed" and got["consumed_by"] == "bob" and "token" not in got
    assert token not in out

    code, out, _ = run("list", "--tenant", "acme", "--format", "json")
    assert code == 0 and [a["approval_id"] for a in json.loads(out)["items"]] == [created["approval"]["approval_id"]]
    code, out, _ = run("list", "--tenant", "acme")
    assert code == 0 and created["approval"]["approval_id"] in out and token not in out

    code, out, _ = run("purge", "--older-than", "0", "--format", "json")
    assert code == 0 and json.loads(out) == {"purged": 1}


def test_revoke(run) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("break-glass", *BY, "--tenant", "acme", "--ir-hash", H1, "--format", "json")
    created = json.loads(out)
    code, out, _ = run("revoke", created["approval"]["approval_id"], "--tenant", "acme", "--by", "carol", "--format", "json")
    assert code == 0 and json.loads(out)["status"] == "revoked"
    code, out, _ = run("consume", "--tenant", "acme", "--ir-hash", H1, "--token", created["token"])
    assert code == 1 and "revoked" in out
    code, _, err = run("revoke", created["approval"]["approval_id"], "--tenant", "other")
    assert code == 1 and err.startswith("irgov: error: no approval")


@pytest.mark.parametrize("args, message", [
    (["--ttl", "0"], "ttl `0` must be greater than 0 seconds"),
    (["--ttl", "-5"], "ttl `-5` must be greater than 0 seconds"),
    (["--ttl", "nan"], "ttl `nan` must be a finite number of seconds"),
    (["--ttl", "soon"], "`--ttl` = `soon` is not a number of seconds"),
    (["--ttl", "999999999"], "exceeds the maximum"),
])
def test_bad_ttl_is_a_one_line_error(run, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("break-glass", *BY, "--tenant", "acme", "--ir-hash", H1, *args)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("irgov: error: ") and message in err


def test_other_one_line_errors(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("break-glass", *BY, "--tenant", "acme", "--ir-hash", "sha256:abc")
    assert code == 1 and err.startswith("irgov: error: digest `sha256:abc`") and err.count("\n") == 1
    code, _, err = run("break-glass", *BY, "--tenant", "acme", "--ir-hash", H1, "--store", "ftp://x")
    assert code == 1 and "has unknown scheme `ftp`" in err
    code, _, err = run("get", "appr_x", "--tenant", "acme")
    assert code == 1 and "no approval `appr_x`" in err
    monkeypatch.delenv(KEY_ENV_VAR)
    # A shared store never gets a generated key; neither does a consume where none was ever made.
    code, _, err = run("break-glass", *BY, "--tenant", "acme", "--ir-hash", H1, "--store", "redis://127.0.0.1:1/0")
    assert code == 1 and KEY_ENV_VAR in err and err.count("\n") == 1
    code, _, err = run("consume", "--tenant", "acme", "--ir-hash", H1, "--token", "irgap_x",
                       "--store", "sqlite:///fresh/approvals.db")
    assert code == 1 and KEY_ENV_VAR in err and err.count("\n") == 1
    code, _, err = run("break-glass", *BY, "--tenant", "acme", "--ir-hash", H1, "--key-file", "/nonexistent/key")
    assert code == 1 and "cannot read approval key file" in err


def test_key_file_and_memory_store(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    key_file = tmp_path / "approval.key"
    key_file.write_text(KeyRing.generate("file-key").to_text() + "\n")
    monkeypatch.delenv(KEY_ENV_VAR)
    code, out, err = run("break-glass", *BY, "--tenant", "acme", "--ir-hash", H1, "--key-file", str(key_file),
                         "--store", "memory://")
    assert code == 0, err
    assert "the token is shown once" in err and "irgap_" in out


def test_an_unreachable_redis_store_is_one_line_on_stderr(tmp_path: Path) -> None:
    """A real process (logging unconfigured, as for a user): the store's error is the only line."""
    env = dict(os.environ, IRGOV_OUTBOX=f"sqlite:///{tmp_path / 'outbox.db'}", IRGOV_EVENT_SINKS="",
               **{KEY_ENV_VAR: KeyRing.generate().to_text()})
    done = subprocess.run(
        [sys.executable, "-c", "from irgov_policy.cli import main; main()", "approvals", "break-glass",
         *BY, "--tenant", "acme", "--ir-hash", H1, "--store", "redis://127.0.0.1:1/0"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    # the kernel's start-up repair says it could not look; then the command's one error line
    warning, error = done.stderr.splitlines()
    assert warning.startswith("irgov: warning: the approval store could not be checked for half-done grants: ")
    assert error.startswith("irgov: error: redis store: cannot read a decision: ConnectionError: ")


def test_events_of_the_store_outbox_are_relayed_before_exit(run, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRGOV_EVENT_SINKS", f"jsonl://{tmp_path}/events.jsonl")
    code, out, _ = run("break-glass", *BY, "--tenant", "acme", "--ir-hash", H1, "--format", "json")
    assert code == 0
    created = json.loads(out)
    code, _, _ = run("consume", "--tenant", "acme", "--ir-hash", H1, "--token", created["token"])
    assert code == 0
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in lines] == ["ir.approval_created", "ir.approval_consumed"]
    assert created["token"] not in (tmp_path / "events.jsonl").read_text()


def test_without_a_key_the_embedded_default_key_is_generated_once_and_shared_with_the_kernel(
        run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from irgov_policy.kernel import Governance

    monkeypatch.delenv(KEY_ENV_VAR)
    code, out, err = run("break-glass", *BY, "--tenant", "acme", "--ir-hash", H1, "--format", "json")
    assert code == 0, err
    key_file = tmp_path / ".irgov" / "approval.key"
    assert key_file.exists() and key_file.stat().st_mode & 0o077 == 0
    first_key = key_file.read_text()
    code, out2, err = run("break-glass", *BY, "--tenant", "acme", "--ir-hash", H1, "--format", "json")
    assert code == 0 and key_file.read_text() == first_key
    # The kernel on embedded defaults reads the same key, so it accepts the CLI's token.
    token = json.loads(out2)["token"]
    with Governance.from_config(environ={}, outbox="memory:") as gov:
        assert gov.consume(token, tenant_id="acme", ir_hash=H1).success


def test_break_glass_is_recorded_published_and_warned(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    """Bug 5: the token minted outside the workflow names who minted it and why, in the ledger,
    the approval and the event, and a warning says so."""
    from irgov_policy.kernel import Governance

    monkeypatch.delenv(KEY_ENV_VAR)  # the embedded default, as the kernel below reads it
    monkeypatch.setenv("IRGOV_EVENT_SINKS", f"jsonl://{tmp_path}/events.jsonl")
    code, out, err = run("break-glass", "--tenant", "acme", "--ir-hash", H1, "--by", "oncall",
                         "--reason", "payments down, INC-7", "--format", "json")
    assert code == 0, err
    minted = json.loads(out)
    assert minted["requested_by"] == minted["granted_by"] == "oncall"
    assert minted["reason"] == "break-glass: payments down, INC-7"
    assert minted["approval"]["created_by"] == "oncall" and minted["approval"]["reason"] == minted["reason"]
    assert any(r.levelname == "WARNING" and r.getMessage().startswith("break-glass: approval ")
               and "minted by oncall" in r.getMessage() for r in caplog.records)
    assert "break-glass approval recorded in the ledger" in err

    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events] == ["ir.approval_created"]
    assert events[0]["payload"]["created_by"] == "oncall"
    assert events[0]["payload"]["approval_id"] == minted["approval"]["approval_id"]

    monkeypatch.delenv("IRGOV_EVENT_SINKS")
    with Governance.from_config(outbox="memory://") as gov:
        [listed], _ = gov.list_requests("acme")
        assert listed.request.request_id == minted["request_id"] and listed.status == "pending"
        assert listed.request.reason == "break-glass: payments down, INC-7"
        assert gov.consume(minted["token"], tenant_id="acme", ir_hash=H1, consumed_by="executor").success
        assert gov.get_request(minted["request_id"], "acme").status == "consumed"


def test_break_glass_needs_a_name_and_a_reason_and_create_is_gone(run) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("break-glass", "--tenant", "acme", "--ir-hash", H1, "--by", "oncall")
    assert code == 1 and "--reason" in err and err.count("\n") == 1
    code, _, err = run("break-glass", "--tenant", "acme", "--ir-hash", H1, "--by", "oncall", "--reason", "")
    assert code == 1 and err.startswith("irgov: error: `reason` must have 1 to") and err.count("\n") == 1
    code, out, err = run("create", "--tenant", "acme", "--ir-hash", H1)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("irgov: error: `irgov approvals create` is now `irgov approvals break-glass")
    code, out, _ = run("list", "--tenant", "acme", "--format", "json")
    assert code == 0 and json.loads(out)["items"] == []  # nothing was minted by the refused commands


def test_consume_retried_with_its_idempotency_key_succeeds_again(run) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("break-glass", "--tenant", "acme", "--ir-hash", H1, *BY, "--format", "json")
    assert code == 0, err
    token = json.loads(out)["token"]
    consume = ("consume", "--tenant", "acme", "--ir-hash", H1, "--token", token, "--by", "bob", "--format", "json")
    first = run(*consume, "--idempotency-key", "job-7")
    assert first[0] == 0 and json.loads(first[1])["success"] is True
    assert run(*consume, "--idempotency-key", "job-7") == first
    code, _, err = run("consume", "--tenant", "acme", "--ir-hash", H1, "--token", token, "--by", "eve",
                       "--idempotency-key", "job-7")
    assert code == 1 and err.strip() == "irgov: error: idempotency key `job-7` was used by another caller"
    code, _, err = run(*consume, "--idempotency-key", "two words")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "`idempotency_key`" in err
