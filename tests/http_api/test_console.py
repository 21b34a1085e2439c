"""The approvals console over HTTP (no browser): sessions, CSRF, headers, scope and escaping.

The browser tests (tests/http_api/test_console_browser.py) drive the same pages in Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kernel.flows import ESCALATE_IR, ir

from irgov_policy.http import create_app
from irgov_policy.http.console.security import CSP
from irgov_policy.http.console.sessions import MemorySessions, Session, SqliteSessions, open_sessions
from irgov_policy.kernel import Governance

from .conftest import KEYS, bearer, settings

XSS = '<img src=x onerror=alert(1)></script><script>alert(2)</script>'


@pytest.fixture
def gov(tmp_path: Path) -> Iterator[Governance]:
    governance = Governance.from_config(environ={}, **settings(tmp_path))
    yield governance
    governance.close()


@pytest.fixture
def api(gov: Governance) -> Iterator[TestClient]:
    with TestClient(create_app(governance=gov)) as client:
        yield client


def browser(api: TestClient) -> TestClient:
    """A second client on the same app, with its own cookie jar (a browser)."""
    return TestClient(api.app, base_url="http://testserver")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: TestClient, who: str = "bob") -> str:
    form = client.get("/console/sign-in")
    assert form.status_code == 200
    signed = client.post("/console/sign-in", data={"csrf_token": csrf_of(form.text), "api_key": KEYS[who]},
                         follow_redirects=False)
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] == "/console/"
    page = client.get("/console/")
    assert page.status_code == 200
    return csrf_of(page.text)


def escalate(api: TestClient, doc: dict[str, Any] = ESCALATE_IR, who: str = "alice") -> str:
    decision = api.post("/validate", json=doc, headers=bearer(who)).json()
    assert decision["status"] == "ESCALATE", decision
    created = api.post("/approvals", json={"tenant_id": doc["tenant_id"], "ir_hash": decision["ir_hash"],
                                           "reason": "dns change"}, headers=bearer(who))
    assert created.status_code == 201, created.text
    return str(created.json()["request_id"])


def test_every_console_response_carries_the_security_headers(api: TestClient) -> None:
    page = browser(api)
    for response in (page.get("/console/sign-in"), page.get("/console/", follow_redirects=False),
                     page.get("/console/static/console.js"), page.get("/console/requests/nope"),
                     page.post("/console/sign-in", data={"api_key": "x"})):
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert "'unsafe-inline'" not in CSP and "default-src 'self'" in CSP
    html = page.get("/console/sign-in").text
    assert "<script>" not in html and "style=" not in html and "onclick" not in html


def test_sign_in_needs_an_approver_or_admin_key_and_the_form_token(api: TestClient) -> None:
    page = browser(api)
    assert page.get("/console/", follow_redirects=False).headers["location"] == "/console/sign-in"
    form = page.get("/console/sign-in")
    token = csrf_of(form.text)
    cookie = form.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    no_token = page.post("/console/sign-in", data={"api_key": KEYS["bob"]}, follow_redirects=False)
    assert no_token.status_code == 403
    wrong = page.post("/console/sign-in", data={"csrf_token": token, "api_key": "not-a-valid-key-000"})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    submitter = page.post("/console/sign-in", data={"csrf_token": csrf_of(wrong.text), "api_key": KEYS["alice"]})
    assert submitter.status_code == 403 and "cannot use the console" in submitter.text
    signed = page.post("/console/sign-in", data={"csrf_token": csrf_of(submitter.text), "api_key": KEYS["bob"]},
                       follow_redirects=False)
    assert signed.status_code == 303
    session_cookie = signed.headers["set-cookie"]
    assert session_cookie.startswith("irgov_console=") and "HttpOnly" in session_cookie
    assert "SameSite=strict" in session_cookie and "Max-Age=28800" in session_cookie
    assert "Secure" not in session_cookie  # plain http here; https sets it (test_cookie_is_secure_on_tls)
    assert KEYS["bob"] not in session_cookie


def test_cookie_is_secure_on_tls(api: TestClient) -> None:
    page = TestClient(api.app, base_url="https://testserver")
    form = page.get("/console/sign-in")
    signed = page.post("/console/sign-in", data={"csrf_token": csrf_of(form.text), "api_key": KEYS["bob"]},
                       follow_redirects=False)
    assert "Secure" in signed.headers["set-cookie"]


def test_queue_detail_and_deny(api: TestClient) -> None:
    request_id = escalate(api)
    page = browser(api)
    csrf = sign_in(page)
    queue = page.get("/console/")
    assert request_id in queue.text and "<title>(1) Queue" in queue.text
    detail = page.get(f"/console/requests/{request_id}")
    assert detail.status_code == 200 and "Approve" in detail.text and "Deny" in detail.text
    assert "dns change" in detail.text and "alice" in detail.text
    refused = page.post(f"/console/requests/{request_id}/deny", data={"reason": "no"})
    assert refused.status_code == 403 and "security token" in refused.text
    no_reason = page.post(f"/console/requests/{request_id}/deny", data={"csrf_token": csrf, "reason": "  "})
    assert no_reason.status_code == 422 and "needs a reason" in no_reason.text
    denied = page.post(f"/console/requests/{request_id}/deny",
                       data={"csrf_token": csrf, "reason": "not during the freeze"}, follow_redirects=False)
    assert denied.status_code == 303
    shown = api.get(f"/approvals/{request_id}", headers=bearer("alice")).json()
    assert shown["status"] == "revoked" and shown["revoked_by"] == "bob"
    assert shown["revoke_reason"] == "not during the freeze"
    assert "<title>(0) Queue" in page.get("/console/").text
    history = page.get("/console/history").text
    assert request_id in history and "denied" in history and "not during the freeze" in history


def test_approve_checks_the_ttl_bounds_and_shows_no_token(api: TestClient, gov: Governance) -> None:
    request_id = escalate(api)
    page = browser(api)
    csrf = sign_in(page)
    high = int(gov.approvals.max_ttl // 60)
    for bad in ("0", str(high + 1), "ten", ""):
        refused = page.post(f"/console/requests/{request_id}/approve", data={"csrf_token": csrf, "ttl_minutes": bad})
        assert refused.status_code == 422, bad
    approved = page.post(f"/console/requests/{request_id}/approve",
                         data={"csrf_token": csrf, "ttl_minutes": "15", "reason": "ok for today"})
    assert approved.status_code == 200
    assert "irgap_" not in approved.text and "Approved" in approved.text
    shown = api.get(f"/approvals/{request_id}", headers=bearer("alice")).json()
    assert shown["granted_by"] == "bob" and shown["approval"]["ttl_seconds"] == 900


def test_separation_of_duties_is_explained_and_enforced(api: TestClient) -> None:
    # root (admin of every tenant) submits and asks; root cannot approve it.
    request_id = escalate(api, who="root")
    page = browser(api)
    csrf = sign_in(page, "root")
    detail = page.get(f"/console/requests/{request_id}").text
    assert "Separation of duties is on" in detail and "You asked for this approval" in detail
    assert re.search(r'class="approve" disabled', detail)
    forced = page.post(f"/console/requests/{request_id}/approve", data={"csrf_token": csrf, "ttl_minutes": "10"})
    assert forced.status_code == 403 and "Separation of duties" in forced.text
    assert api.get(f"/approvals/{request_id}", headers=bearer("root")).json()["status"] == "requested"


def test_another_tenants_request_is_invisible(api: TestClient) -> None:
    other = escalate(api, ir(ESCALATE_IR, tenant_id="t2", request_id="req-t2"), who="eve")
    mine = escalate(api)
    page = browser(api)
    csrf = sign_in(page)
    queue = page.get("/console/").text
    assert mine in queue and other not in queue
    assert page.get(f"/console/requests/{other}").status_code == 404
    denied = page.post(f"/console/requests/{other}/deny", data={"csrf_token": csrf, "reason": "x"})
    assert denied.status_code == 404
    assert api.get(f"/approvals/{other}", headers=bearer("eve")).json()["status"] == "requested"


def test_ir_strings_are_text(api: TestClient) -> None:
    request_id = escalate(api, ir(ESCALATE_IR, request_id="req-xss"))
    created = api.post("/approvals", json={"tenant_id": "t1", "ir_hash": api.get(
        f"/approvals/{request_id}", headers=bearer("alice")).json()["ir_hash"], "reason": XSS}, headers=bearer("alice"))
    xss_id = created.json()["request_id"]
    page = browser(api)
    sign_in(page)
    for html in (page.get("/console/").text, page.get(f"/console/requests/{xss_id}").text):
        assert "<img src=x" not in html and "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;/script&gt;" in page.get(f"/console/requests/{xss_id}").text


def test_sign_out_ends_the_session_server_side(api: TestClient) -> None:
    page = browser(api)
    csrf = sign_in(page)
    cookie = page.cookies.get("irgov_console")
    assert cookie
    refused = page.post("/console/sign-out", data={}, follow_redirects=False)
    assert refused.status_code == 403
    out = page.post("/console/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in?done=signed-out"
    replay = browser(api)
    replay.cookies.set("irgov_console", cookie, path="/console")
    assert replay.get("/console/", follow_redirects=False).headers["location"] == "/console/sign-in"


def test_sessions_are_shared_by_workers_of_one_store(tmp_path: Path) -> None:
    # Two apps on one approval store stand for two worker processes.
    first = Governance.from_config(environ={}, **settings(tmp_path))
    second = Governance.from_config(environ={}, **settings(tmp_path))
    try:
        with TestClient(create_app(governance=first)) as one, TestClient(create_app(governance=second)) as two:
            csrf = sign_in(one)
            two.cookies.set("irgov_console", one.cookies["irgov_console"], path="/console")
            assert two.get("/console/").status_code == 200
            one.post("/console/sign-out", data={"csrf_token": csrf})
            assert two.get("/console/", follow_redirects=False).status_code == 303
    finally:
        first.close()
        second.close()
    assert (tmp_path / "state" / "approvals.console-sessions.db").exists()


def test_a_removed_key_ends_its_sessions(tmp_path: Path) -> None:
    gov = Governance.from_config(environ={}, **settings(tmp_path))
    fewer = Governance.from_config(environ={}, **settings(
        tmp_path, api_keys=tuple(k for k in settings(tmp_path)["api_keys"] if not k.startswith("bob:"))))
    try:
        with TestClient(create_app(governance=gov)) as one, TestClient(create_app(governance=fewer)) as two:
            sign_in(one)
            two.cookies.set("irgov_console", one.cookies["irgov_console"], path="/console")
            assert two.get("/console/", follow_redirects=False).status_code == 303
    finally:
        gov.close()
        fewer.close()


def session(expires_in: float = 60.0) -> Session:
    import time

    return Session("bob", "approver", ("t1",), "sha256:" + "0" * 64, "csrf", time.time(), time.time() + expires_in)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_session_stores(kind: str, tmp_path: Path) -> None:
    store = MemorySessions() if kind == "memory" else SqliteSessions(tmp_path / "s.db")
    store.put("a", session())
    assert store.get("a") == session().__class__(**{**session().__dict__, "created": store.get("a").created,  # type: ignore[union-attr]
                                                   "expires": store.get("a").expires})  # type: ignore[union-attr]
    store.put("old", session(-1))
    store.put("b", session())
    assert store.get("old") is None  # expired records are purged on the next write
    store.delete("a")
    assert store.get("a") is None and store.get("b") is not None
    store.close()


@pytest.mark.redis
def test_session_store_on_redis(redis_url: str) -> None:
    store = open_sessions(redis_url)
    store.put("r", session())
    found = store.get("r")
    assert found is not None and found.principal == "bob" and found.tenants == ("t1",)
    store.delete("r")
    assert store.get("r") is None
    store.close()


@pytest.mark.postgres
def test_session_store_on_postgres(postgres_url: str) -> None:
    store = open_sessions(postgres_url)
    store.put("p", session())
    found = store.get("p")
    assert found is not None and found.role == "approver"
    store.delete("p")
    assert store.get("p") is None
    store.close()


def test_live_feed_sends_the_queue(api: TestClient, gov: Governance) -> None:
    page = browser(api)
    sign_in(page)
    escalate(api)
    with page.stream("GET", "/console/events?status=requested") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["content-security-policy"] == CSP
        lines = stream.iter_lines()
        assert next(lines).startswith("retry: ")
        assert next(lines) == ""
        assert next(lines) == "event: queue"
        data = next(lines)
        assert data.startswith("data: ") and '"waiting":1' in data and "dns change" in data


def test_browser_tests_skip_without_chromium_and_fail_when_required(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    from . import browser

    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.delenv("IRGOV_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no chromium at"):
        browser.require_browser()
    monkeypatch.setenv("IRGOV_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="IRGOV_REQUIRE_BROWSER=1 but no chromium"):
        browser.require_browser()


def test_detail_model_reads_recorded_steps_and_the_decision() -> None:
    from irgov_policy.http.console.present import detail_model, queue_rows

    view = {
        "request_id": "areq_" + "0" * 32, "tenant_id": "t1", "status": "requested", "risk_tier": 2,
        "requested_at": "2026-12-01T10:00:00Z", "requested_by": "alice", "intent_summary": "move www",
        "deadline_at": "2026-12-01T12:00:00Z", "time_left_seconds": 3600, "submitted_by": ["alice"],
        "decision": {"high_risk_steps": [{"step_index": 1, "action": "dns.update_records", "provider": "dns.x",
                                          "risk_tier": 2, "reason": "dns changes need a human"}],
                     "violations": [], "audit_violations": [{"step_index": 0, "code": "NEW_RULE", "message": "m",
                                                             "mode": "audit"}],
                     "packs": [{"name": "baseline", "version": "1", "digest": "sha256:" + "a" * 64}]},
        "steps": {"items": [
            {"index": 0, "action": "webgen.generate_site", "provider": "webgen.v1", "tier": 0, "high_risk": False,
             "resource": {"text": "site/a", "truncated": False, "size": 6},
             "params": {"text": '{"theme":"clean"}', "truncated": False, "size": 17},
             "constraints": {"text": "{}", "truncated": False, "size": 2}, "hits": []},
            {"index": 1, "action": "dns.update_records", "provider": "dns.x", "tier": 2, "high_risk": True,
             "resource": {"text": "zone/a", "truncated": False, "size": 6},
             "params": {"text": '{"records":[', "truncated": True, "size": 5000},
             "constraints": {"text": "{}", "truncated": False, "size": 2},
             "hits": [{"pack": "baseline", "rule": "dns-writes", "tier": 2, "reason": "dns changes need a human",
                       "mode": "enforce"}]}], "next_offset": None, "total": 2},
    }
    model = detail_model(view)
    assert [s.escalates for s in model.steps] == [False, True]
    assert model.steps[1].params.endswith("(cut: 5000 bytes in all)")
    assert model.steps[1].hits[0]["rule"] == "dns-writes"
    assert model.reasons == ("step 1 (dns.update_records on dns.x) is tier 2: dns changes need a human",)
    assert model.violations[0]["mode"] == "audit" and model.packs[0]["name"] == "baseline"
    assert model.submitted_by == ("alice",) and '"intent_summary": "move www"' in model.raw_ir
    row = queue_rows([view], datetime(2026, 12, 1, 11, 0, tzinfo=UTC))[0]
    assert row["summary"] == "move www" and row["time_left"] == "1 h 0 min" and row["age"] == "1 h 0 min"


def test_live_feed_is_woken_by_the_event_bus(gov: Governance) -> None:
    # The poll is slower than the stream is long: only an event can bring the second message.
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    from irgov_policy.http import create_router
    from irgov_policy.http.console import ConsoleSettings, create_console_router

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        await gov.astart()
        yield
        await gov.astop()

    app = FastAPI(lifespan=lifespan)
    app.include_router(create_router(gov, console=False))
    app.include_router(create_console_router(gov, settings=ConsoleSettings(poll_interval=60, stream_seconds=8)),
                       prefix="/console")
    with TestClient(app) as api:
        request_id = escalate(api)
        page = browser(api)
        sign_in(page)
        with page.stream("GET", "/console/events?status=requested") as stream:
            messages = (line for line in stream.iter_lines() if line.startswith("data: "))
            assert '"waiting":1' in next(messages)
            granted = api.post(f"/approvals/{request_id}/grant", json={"ttl_seconds": 60}, headers=bearer("bob"))
            assert granted.status_code == 200
            assert '"waiting":0' in next(messages)  # ir.approval_created woke the stream


def test_detail_shows_the_steps_their_hits_and_pages_them(api: TestClient) -> None:
    step = ESCALATE_IR["steps"][0]
    many = ir(ESCALATE_IR, request_id="req-many", intent_summary="move www and more",
              steps=[{**step, "step_id": f"s{i}", "idempotency_key": f"k-many-{i}"} for i in range(60)])
    request_id = escalate(api, many)
    page = browser(api)
    sign_in(page)
    html = page.get(f"/console/requests/{request_id}").text
    assert "move www and more" in html
    assert html.count('<tr class="escalates">') == 50  # the first page of steps, each one escalating
    assert '<span class="flag">escalates</span>' in html and "dns.update_records" in html
    assert re.search(r'<li class="hit"><strong>[^<]+</strong>', html)  # the rule that fired, by name
    assert "Steps 1 to 50 of 60." in html and f'href="/console/requests/{request_id}?steps=50">Next steps' in html
    second = page.get(f"/console/requests/{request_id}?steps=50").text
    assert second.count('<tr class="escalates">') == 10 and "Steps 51 to 60 of 60." in second
    assert "Previous steps" in second and "Next steps" not in second
    assert "<details class=\"raw\">" in html and "Why it needs a human" in html
    queue = page.get("/console/").text
    assert "move www and more" in queue
