"""Reloading packs under a real `irgov serve`: a file edit, a broken edit, SIGHUP, POST /packs/reload."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from policy.conftest import copy_pack_folder

from .conftest import API_KEYS, KEYS
from .live import free_port, running

IR = {"tenant_id": "t1", "request_id": "reload-1", "steps": [
    {"action": "dns.update_records", "provider": "dns.cloudflare", "resource": "dns:blocked.example",
     "params": {}, "idempotency_key": "reload-1-0"}]}
BLOCKING_PACK = """\
apiVersion: irgov.dev/v1
kind: RulePack
metadata: {name: blocklist, version: "1"}
rules:
  - id: blocked-zone
    when: step.resource == "dns:blocked.example"
    violation: {code: BLOCKED_ZONE, message: this zone is frozen}
"""


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


def wait_for(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


class Server:
    def __init__(self, base: str, packs: Path, workdir: Path, process: Any) -> None:
        self.base, self.packs, self.workdir, self.process = base, packs, workdir, process
        self.client = httpx.Client(base_url=base, timeout=30)

    def packs_status(self) -> dict[str, Any]:
        response = self.client.get("/packs", headers=auth("alice"))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def decide(self) -> dict[str, Any]:
        body: dict[str, Any] = self.client.post("/validate", json=IR, headers=auth("alice")).json()
        return body


def _serve(tmp_path: Path, **settings: str) -> Iterator[Server]:
    workdir = tmp_path / "serve"
    workdir.mkdir()
    packs = copy_pack_folder(tmp_path / "packs")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    env.update({"IRGOV_API_KEYS": ",".join(API_KEYS), "IRGOV_PACKS": str(packs),
                "IRGOV_EVENT_SINKS": f"jsonl://{workdir}/events.jsonl", **settings})
    argv = [sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve", "--port", str(port),
            "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    with running(argv, cwd=workdir, env=env, health_url=base + "/health") as process:
        server = Server(base, packs, workdir, process)
        try:
            yield server
        finally:
            server.client.close()


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Server]:
    yield from _serve(tmp_path)


@pytest.fixture
def unwatched(tmp_path: Path) -> Iterator[Server]:
    yield from _serve(tmp_path, IRGOV_WATCH_PACKS="false")


def test_an_edit_changes_the_packs_and_the_next_decision(watched: Server) -> None:
    before = watched.packs_status()
    assert before["watching"] is True and before["last_reload_error"] is None
    assert watched.decide()["status"] == "ESCALATE"
    (watched.packs / "blocklist.irgov.yaml").write_text(BLOCKING_PACK, "utf-8")
    after = wait_for(lambda: (s := watched.packs_status())["digest"] != before["digest"] and s, "the new pack set")
    assert "blocklist" in {p["name"] for p in after["packs"]}
    assert after["loaded_by"] == "watch" and after["loaded_at"] > before["loaded_at"]
    decision = watched.decide()
    assert decision["status"] == "REJECT"
    assert [v["code"] for v in decision["violations"]] == ["BLOCKED_ZONE"]
    # The change is a governance event of its own, delivered to the configured sink.
    events_file = watched.workdir / "events.jsonl"

    def reloaded() -> list[dict[str, Any]]:
        if not events_file.exists():
            return []
        lines = [json.loads(x) for x in events_file.read_text("utf-8").splitlines()]
        return [e for e in lines if e["type"] == "ir.packs_reloaded"]

    [event] = wait_for(reloaded, "the ir.packs_reloaded event")
    assert event["payload"]["old_digest"] == before["digest"] and event["payload"]["new_digest"] == after["digest"]
    assert event["payload"]["reloaded_by"] == "watch" and event["payload"]["trigger"] == "watch"
    assert "rule pack set changed by watch (watch)" in (watched.workdir / "server.log").read_text()


def test_a_broken_edit_keeps_the_old_set_and_reports_the_error(watched: Server) -> None:
    before = watched.packs_status()
    (watched.packs / "blocklist.irgov.yaml").write_text(BLOCKING_PACK.replace("violation:", "violations:"), "utf-8")
    failed = wait_for(lambda: (s := watched.packs_status())["last_reload_error"] and s, "the reload error")
    assert failed["digest"] == before["digest"]
    error = failed["last_reload_error"]["error"]
    assert error.startswith("load: ") and "blocklist.irgov.yaml:" in error and "\n" not in error
    assert watched.decide()["status"] == "ESCALATE"  # still the old set
    health = watched.client.get("/health").json()
    assert health["packs"]["digest"] == before["digest"] and health["packs"]["last_reload_failed_at"]
    assert "reloading the rule packs (by watch, watch) failed" in (watched.workdir / "server.log").read_text()
    # Repairing the file puts the new set in force and clears the error.
    (watched.packs / "blocklist.irgov.yaml").write_text(BLOCKING_PACK, "utf-8")
    repaired = wait_for(lambda: (s := watched.packs_status())["last_reload_error"] is None and s, "the repair")
    assert repaired["digest"] != before["digest"] and watched.decide()["status"] == "REJECT"


def test_sighup_reloads_and_never_stops_the_server(unwatched: Server) -> None:
    before = unwatched.packs_status()
    assert before["watching"] is False
    (unwatched.packs / "blocklist.irgov.yaml").write_text(BLOCKING_PACK, "utf-8")
    time.sleep(1.0)
    assert unwatched.packs_status()["digest"] == before["digest"]  # not watched: nothing happens by itself
    unwatched.process.send_signal(signal.SIGHUP)
    after = wait_for(lambda: (s := unwatched.packs_status())["digest"] != before["digest"] and s, "the SIGHUP reload")
    assert after["loaded_by"] == "SIGHUP" and after["last_reload"]["trigger"] == "signal"
    assert unwatched.decide()["status"] == "REJECT"
    # Another SIGHUP with nothing changed: still serving, nothing changed.
    unwatched.process.send_signal(signal.SIGHUP)
    wait_for(lambda: unwatched.packs_status()["reloads"] == 2, "the second SIGHUP reload")
    assert unwatched.process.poll() is None
    assert unwatched.packs_status()["digest"] == after["digest"]


def test_post_packs_reload_needs_an_admin_of_every_tenant(unwatched: Server) -> None:
    before = unwatched.packs_status()
    (unwatched.packs / "blocklist.irgov.yaml").write_text(BLOCKING_PACK, "utf-8")
    for who, code in (("alice", "forbidden-role"), ("bob", "forbidden-role"), ("eve", "forbidden-tenant")):
        response = unwatched.client.post("/packs/reload", headers=auth(who))
        assert response.status_code == 403 and response.json()["type"].endswith(code), (who, response.text)
    assert unwatched.client.post("/packs/reload").status_code == 401
    assert unwatched.packs_status()["digest"] == before["digest"]
    response = unwatched.client.post("/packs/reload", headers=auth("root"))
    assert response.status_code == 200
    result = response.json()
    assert result["ok"] and result["changed"] and result["by"] == "root" and result["trigger"] == "api"
    assert unwatched.packs_status()["digest"] == result["new_digest"] != before["digest"]
    # A failing candidate answers 200 with the reason; the set in force stays.
    (unwatched.packs / "blocklist.irgov.yaml").write_text("kind: [", "utf-8")
    failed = unwatched.client.post("/packs/reload", headers=auth("root")).json()
    assert failed["ok"] is False and failed["error"].startswith("load: ")
    assert unwatched.packs_status()["digest"] == result["new_digest"]


def _irgov(*args: str, key: str | None) -> Any:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    if key is not None:
        env["IRGOV_API_KEY"] = key
    return subprocess.run([sys.executable, "-c", "from irgov_policy.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_irgov_packs_shows_and_reloads_a_running_server(unwatched: Server) -> None:
    shown = _irgov("packs", "--server", unwatched.base, "--format", "json", key=KEYS["alice"])
    assert shown.returncode == 0, shown.stderr
    before = json.loads(shown.stdout)
    assert before["digest"] == unwatched.packs_status()["digest"] and before["loaded_at"]
    (unwatched.packs / "blocklist.irgov.yaml").write_text(BLOCKING_PACK, "utf-8")
    refused = _irgov("packs", "--server", unwatched.base, "--reload", key=KEYS["alice"])
    assert refused.returncode == 1 and refused.stderr.startswith("irgov: error: ") and "403" in refused.stderr
    reloaded = _irgov("packs", "--server", unwatched.base, "--reload", key=KEYS["root"])
    assert reloaded.returncode == 0, reloaded.stderr
    assert reloaded.stdout.startswith("reload: changed at ") and "blocklist@1 " in reloaded.stdout
    (unwatched.packs / "blocklist.irgov.yaml").write_text("kind: [", "utf-8")
    failed = _irgov("packs", "--server", unwatched.base, "--reload", key=KEYS["root"])
    assert failed.returncode == 1 and failed.stdout.startswith("reload: failed at ")
    assert "blocklist.irgov.yaml" in failed.stdout.splitlines()[0]
    status = _irgov("packs", "--server", unwatched.base, key=KEYS["alice"])
    assert status.returncode == 0 and "last reload: failed at " in status.stdout
    missing = _irgov("packs", "--server", unwatched.base, key=None)
    assert missing.returncode == 1
    assert missing.stderr.strip() == ("irgov: error: set `IRGOV_API_KEY` to an api key of the server (an admin of "
                                      "every tenant for --reload)")
