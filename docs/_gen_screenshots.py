"""Make the console's screenshots in docs/: `python docs/_gen_screenshots.py`.

Starts `irgov serve` in a scratch folder on a free port, asks for three approvals through the
API (as docs/console.md does), signs in as the approver in Debian's Chromium (/usr/bin/chromium,
through Playwright) and saves the queue and a request's detail page at 1280x800.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
CHROMIUM = "/usr/bin/chromium"
KEYS = {"pipeline": "pipeline-key-please-change-me", "alice": "alice-key-please-change-me"}
API_KEYS = "pipeline:submitter:tenant_123:pipeline-key-please-change-me,alice:approver:tenant_123:alice-key-please-change-me"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ask(client: httpx.Client, ir: dict[str, Any], reason: str) -> str:
    auth = {"Authorization": f"Bearer {KEYS['pipeline']}"}
    decision = client.post("/validate", json=ir, headers=auth).json()
    created = client.post("/approvals", json={"tenant_id": ir["tenant_id"], "ir_hash": decision["ir_hash"],
                                              "reason": reason}, headers=auth)
    created.raise_for_status()
    return str(created.json()["request_id"])


def main() -> None:
    from playwright.sync_api import sync_playwright

    example = json.loads((REPO / "examples" / "escalate.json").read_text("utf-8"))
    second = {**example, "request_id": "req_escalate_002", "intent_summary": "Add a mail exchanger for acme.example",
              "steps": [{**example["steps"][1], "step_id": "mx", "idempotency_key": "req_escalate_002-mx",
                         "params": {"records": [{"type": "MX", "name": "@", "value": "mx.acme.example"}]}}]}
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
        env["IRGOV_API_KEYS"] = API_KEYS
        server = subprocess.Popen([sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve", "--port", str(port),
                                   "--log-level", "warning"], cwd=scratch, env=env)
        try:
            with httpx.Client(base_url=base, timeout=10) as client:
                for _ in range(100):
                    try:
                        if client.get("/health").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.1)
                first = ask(client, example, "release 4.2: new load balancer")
                ask(client, second, "mail migration")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking"])
                page = browser.new_page(base_url=base, viewport={"width": 1280, "height": 800})
                page.goto("/console/")
                page.get_by_label("API key").fill(KEYS["alice"])
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url("**/console/")
                page.locator("#live-status").filter(has_text="Live").wait_for()
                page.screenshot(path=str(DOCS / "console-queue.png"))
                page.goto(f"/console/requests/{first}")
                page.screenshot(path=str(DOCS / "console-detail.png"), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(10)
    print("wrote docs/console-queue.png and docs/console-detail.png")


if __name__ == "__main__":
    main()
