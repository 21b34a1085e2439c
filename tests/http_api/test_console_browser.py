"""The approvals console in a real browser: `irgov serve` on a free port, Chromium through
Playwright (tests/http_api/browser.py). One server and one browser for the module; a fresh
browser context (cookies, storage) per test."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kernel.flows import ESCALATE_IR, dag_for, ir

from .browser import chromium, require_browser
from .conftest import API_KEYS, KEYS
from .live import free_port, running

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "</script><script>window.__xss=2</script>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_browser()
    workdir = tmp_path_factory.mktemp("console")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    env["IRGOV_API_KEYS"] = ",".join(API_KEYS)
    argv = [sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve", "--port", str(port),
            "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    with running(argv, cwd=workdir, env=env, health_url=base + "/health"):
        yield base


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    with chromium() as opened:
        yield opened


@pytest.fixture
def api(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=10) as client:
        yield client


class Page:
    """A page of a fresh context, recording what the browser refused (CSP) and any dialog."""

    def __init__(self, browser: Any, server: str, **context: Any) -> None:
        self.context = browser.new_context(base_url=server, **context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.console_errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        self.page.on("dialog", dialog)

    def sign_in(self, who: str = "bob") -> None:
        self.page.goto("/console/")
        assert self.page.url.endswith("/console/sign-in")
        self.page.get_by_label("API key").fill(KEYS[who])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(r"/console/$"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Page]:
    opened = Page(browser, server, viewport={"width": 1280, "height": 800})
    yield opened
    assert not opened.dialogs, opened.dialogs
    # No inline script or style in any page: the strict CSP would have refused and logged it.
    assert not [e for e in opened.console_errors if "Content Security Policy" in e], opened.console_errors
    opened.close()


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


def escalate(api: httpx.Client, doc: dict[str, Any], who: str = "alice", reason: str = "dns change") -> str:
    decision = api.post("/validate", json=doc, headers=auth(who)).json()
    assert decision["status"] == "ESCALATE", decision
    created = api.post("/approvals", json={"tenant_id": doc["tenant_id"], "ir_hash": decision["ir_hash"],
                                           "reason": reason}, headers=auth(who))
    assert created.status_code == 201, created.text
    return str(created.json()["request_id"])


def unique(doc: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    """`doc` under a request id of its own: every test approves a different IR."""
    out = ir(doc, request_id=f"req-{name}", **changes)
    out["steps"][0]["idempotency_key"] = f"k-{name}"
    return out


def row(page: Page, request_id: str) -> Any:
    return page.page.locator(f'#queue tbody tr[data-id="{request_id}"]')


def test_a_request_appears_live_and_is_approved_without_a_token(page: Page, api: httpx.Client) -> None:
    page.sign_in()
    before = page.page.title()
    doc = unique(ESCALATE_IR, "live")
    request_id = escalate(api, doc)  # after the page loaded: it must come without a reload
    row(page, request_id).wait_for()
    waiting = int(page.page.locator("#waiting-count").inner_text())
    assert re.match(rf"^\({waiting}\) Queue", page.page.title()) and page.page.title() != before
    row(page, request_id).get_by_role("link", name=request_id).click()
    page.page.wait_for_url(re.compile(rf"/console/requests/{request_id}$"))
    assert page.page.get_by_text("dns change").count() >= 1
    page.page.get_by_label(re.compile("Token lifetime")).fill("20")
    page.page.get_by_label("Reason (optional)").fill("change window open")
    page.page.get_by_role("button", name="Approve").click()
    page.page.get_by_role("status").filter(has_text="Approved").wait_for()
    assert "irgap_" not in page.page.content()
    shown = api.get(f"/approvals/{request_id}", headers=auth("alice")).json()
    assert shown["status"] == "pending" and shown["granted_by"] == "bob"
    assert shown["approval"]["ttl_seconds"] == 1200
    assert "token" not in shown
    page.page.goto("/console/history")
    assert page.page.locator("#history").get_by_role("link", name=request_id).count() == 1


def test_deny_with_a_reason(page: Page, api: httpx.Client) -> None:
    request_id = escalate(api, unique(ESCALATE_IR, "deny"))
    page.sign_in()
    page.page.goto(f"/console/requests/{request_id}")
    page.page.get_by_label("Reason (required)").fill("not during the freeze")
    page.page.get_by_role("button", name="Deny").click()
    page.page.get_by_role("status").filter(has_text="Denied").wait_for()
    shown = api.get(f"/approvals/{request_id}", headers=auth("alice")).json()
    assert shown["status"] == "revoked" and shown["revoked_by"] == "bob"
    assert shown["revoke_reason"] == "not during the freeze"
    page.page.goto("/console/history")
    history = page.page.locator("#history")
    assert "not during the freeze" in history.inner_text()


def test_another_tenants_request_is_invisible(page: Page, api: httpx.Client) -> None:
    theirs = escalate(api, unique(ESCALATE_IR, "tenant2", tenant_id="t2"), who="eve")
    page.sign_in()
    mine = escalate(api, unique(ESCALATE_IR, "tenant1"))
    row(page, mine).wait_for()
    assert row(page, theirs).count() == 0 and theirs not in page.page.content()
    response = page.page.goto(f"/console/requests/{theirs}")
    assert response is not None and response.status == 404


def test_ir_strings_render_as_text_and_run_no_script(page: Page, api: httpx.Client) -> None:
    page.sign_in()
    doc = unique(ESCALATE_IR, "xss")
    doc["intent_summary"] = XSS + XSS_SCRIPT
    doc["steps"][0]["params"] = {"records": [{"type": "A", "name": XSS, "value": XSS_SCRIPT}]}
    request_id = escalate(api, doc, reason=XSS + XSS_SCRIPT)
    # through the live feed (the script builds the row)...
    row(page, request_id).wait_for()
    assert row(page, request_id).locator(".summary").inner_text() == XSS + XSS_SCRIPT
    assert page.page.locator("#queue img").count() == 0
    # ...and server-rendered
    page.page.goto("/console/")
    page.page.goto(f"/console/requests/{request_id}")
    main = page.page.locator("main")
    assert XSS + XSS_SCRIPT in main.inner_text()
    steps = page.page.locator("table.steps").inner_text()
    assert "<img src=x onerror=" in steps and XSS_SCRIPT in steps  # the params (json text), as text
    assert page.page.locator("main img").count() == 0 and page.page.locator("main script").count() == 0
    assert page.page.evaluate("window.__xss === undefined")


def test_a_post_without_the_csrf_token_is_refused(page: Page, api: httpx.Client) -> None:
    request_id = escalate(api, unique(ESCALATE_IR, "csrf"))
    page.sign_in()
    page.page.goto(f"/console/requests/{request_id}")
    status = page.page.evaluate(
        """async (url) => (await fetch(url, {method: "POST", body: new URLSearchParams({reason: "x"})})).status""",
        f"/console/requests/{request_id}/deny")
    assert status == 403
    assert api.get(f"/approvals/{request_id}", headers=auth("alice")).json()["status"] == "requested"


def test_sign_out_ends_the_session(page: Page, browser: Any, server: str) -> None:
    page.sign_in()
    cookies = page.context.cookies()
    assert [c for c in cookies if c["name"] == "irgov_console" and c["httpOnly"] and c["sameSite"] == "Strict"]
    page.page.get_by_role("button", name="Sign out").click()
    page.page.wait_for_url(re.compile(r"/console/sign-in"))
    page.page.goto("/console/")
    assert page.page.url.endswith("/console/sign-in")
    # The old cookie, replayed by another browser, opens nothing: the session ended server-side.
    other = Page(browser, server)
    try:
        other.context.add_cookies(cookies)
        other.page.goto("/console/")
        assert other.page.url.endswith("/console/sign-in")
    finally:
        other.close()


def test_keyboard_labels_and_narrow_screens(browser: Any, server: str, api: httpx.Client) -> None:
    request_id = escalate(api, unique(ESCALATE_IR, "narrow"))
    narrow = Page(browser, server, viewport={"width": 390, "height": 844})
    try:
        narrow.page.goto("/console/sign-in")
        narrow.page.wait_for_function("document.activeElement && document.activeElement.id === 'api_key'")
        narrow.page.keyboard.type(KEYS["bob"])  # the key field has the focus
        narrow.page.keyboard.press("Enter")
        narrow.page.wait_for_url(re.compile(r"/console/$"))
        for path in ("/console/", f"/console/requests/{request_id}", "/console/history"):
            narrow.page.goto(path)
            unlabelled = narrow.page.evaluate("""() => [...document.querySelectorAll(
                'input:not([type=hidden]), select, textarea')].filter(e => !e.labels || !e.labels.length)
                .map(e => e.name)""")
            assert unlabelled == [], (path, unlabelled)
            # Nothing wider than the screen but the tables' own scrolling boxes.
            assert narrow.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path
        narrow.page.goto(f"/console/requests/{request_id}")
        narrow.page.get_by_label("Reason (required)").focus()
        narrow.page.keyboard.type("by keyboard")
        narrow.page.keyboard.press("Tab")
        narrow.page.keyboard.press("Enter")
        narrow.page.get_by_role("status").filter(has_text="Denied").wait_for()
    finally:
        narrow.close()


def test_the_requester_claims_the_token_and_the_gate_passes(page: Page, api: httpx.Client) -> None:
    doc = unique(ESCALATE_IR, "claim")
    request_id = escalate(api, doc)
    page.sign_in()
    page.page.goto(f"/console/requests/{request_id}")
    page.page.get_by_role("button", name="Approve").click()
    page.page.get_by_role("status").filter(has_text="Approved").wait_for()
    assert "irgap_" not in page.page.content()
    assert api.post(f"/approvals/{request_id}/claim", headers=auth("bob")).status_code == 403  # not the requester
    claimed = api.post(f"/approvals/{request_id}/claim", headers=auth("alice"))
    assert claimed.status_code == 200, claimed.text
    assert claimed.headers["cache-control"] == "no-store"
    token = claimed.json()["token"]
    assert api.post(f"/approvals/{request_id}/claim", headers=auth("alice")).status_code == 409  # once
    gate = api.post("/authorize", json={"ir": doc, "dag": dag_for(doc), "approval_token": token},
                    headers=auth("alice")).json()
    assert gate["allowed"] is True, gate["reasons"]
    page.page.goto(f"/console/requests/{request_id}")
    history = page.page.locator("ol.history").inner_text()
    assert "granted by bob" in history and "token claimed by alice" in history and "consumed by alice" in history
