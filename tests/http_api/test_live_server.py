"""`irgov serve` as a real process on a free port: the full flow over real HTTP, then schemathesis."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kernel.flows import ESCALATE_IR, dag_for

from .conftest import API_KEYS, KEYS
from .live import free_port, running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    env["IRGOV_API_KEYS"] = ",".join(API_KEYS)
    argv = [sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve", "--port", str(port),
            "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    with running(argv, cwd=workdir, env=env, health_url=base + "/health"):
        yield base
    # the embedded defaults were used: state and the generated key live under ./.irgov
    assert (workdir / ".irgov" / "approvals.db").exists()
    assert oct((workdir / ".irgov" / "approval.key").stat().st_mode & 0o777) == "0o600"


def test_full_flow_over_real_http(server: str) -> None:
    def auth(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {KEYS[who]}"}

    with httpx.Client(base_url=server, timeout=10) as client:
        decision = client.post("/validate", json=ESCALATE_IR, headers=auth("alice")).json()
        assert decision["status"] == "ESCALATE"
        request_id = client.post("/approvals", json={"tenant_id": "t1", "ir_hash": decision["ir_hash"]},
                                 headers=auth("alice")).json()["request_id"]
        assert client.post(f"/approvals/{request_id}/grant", headers=auth("alice")).status_code == 403
        token = client.post(f"/approvals/{request_id}/grant", headers=auth("bob")).json()["token"]
        body = {"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR), "approval_token": token}
        assert client.post("/authorize", json=body, headers=auth("alice")).json()["allowed"] is True
        replay = client.post("/authorize", json=body, headers=auth("alice")).json()
        assert replay["allowed"] is False and replay["approval"]["reason"] == "already_consumed"
        assert client.get(f"/approvals/{request_id}", headers=auth("eve")).status_code == 404


def test_schemathesis_finds_no_server_error(server: str, tmp_path: Path) -> None:
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.fail("schemathesis is not installed: it is part of the `test` extra")
    result = subprocess.run(
        [executable, "run", f"{server}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "8", "--seed", "20261127", "--phases", "examples,coverage,fuzzing",
         "-H", f"Authorization: Bearer {KEYS['root']}", "--request-timeout", "10",
         "--generation-database", "none", "--no-color"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# Job control for the script's `irgov serve &` / `kill %1`, and no server left behind on failure.
_STOP_JOBS = "set -m\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"


def test_the_documented_curl_flow(tmp_path: Path) -> None:
    """docs/http-api.md's shell session, run as written (a free port instead of 8000, and a wait
    for /health instead of `sleep 2`), prints what its comments say."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    page = (Path(__file__).resolve().parents[2] / "docs" / "http-api.md").read_text("utf-8")
    script = page.split("## The whole flow with curl", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    lines = [line for line in script.splitlines() if not line.startswith(("python -m venv", "pip install"))]
    port = str(free_port())
    wait = f"for _ in $(seq 300); do curl -s localhost:{port}/health >/dev/null && break; sleep 0.1; done"
    body = "\n".join(wait if line.strip() == "sleep 2" else line for line in lines).replace("8000", port)
    expected = [m.group(1).strip() for m in re.finditer(r"\|\s*field [^#\n]*#\s*(.+)$", body, re.MULTILINE)]
    assert len(expected) >= 4, "the documented flow lost its expected outputs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", _STOP_JOBS + body], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    log = (tmp_path / "irgov.log").read_text("utf-8") if (tmp_path / "irgov.log").exists() else ""
    assert result.returncode == 0, result.stdout + result.stderr + log
    printed = result.stdout.strip().splitlines()
    assert len(printed) == len(expected), (printed, expected)
    for shown, comment in zip(printed, expected, strict=True):
        assert comment in shown, (shown, comment)
