"""Mission control mounts governance: a host app with its own EventStream drives the whole flow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from kernel.flows import ESCALATE_IR, dag_for

from irgov_policy.http import Principal, Role
from irgov_policy.integrations.mission_control import install
from irgov_policy.kernel import Governance

from .conftest import settings


class FakeEventStream:
    """The host's EventStream: an async `publish_event` bound to the app's loop."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    async def publish_event(self, event: Any) -> None:
        self.loop = asyncio.get_running_loop()
        self.events.append(event)


def header_auth(request: Any) -> Principal:
    """The host's own authentication: here, a trusted header set by its gateway."""
    name, _, role = request.headers.get("x-user", "anonymous:submitter").partition(":")
    return Principal(name, Role(role), frozenset({"t1"}))


def test_escalate_approve_authorize_audit_through_the_host(tmp_path: Path) -> None:
    stream = FakeEventStream()
    started: list[str] = []

    @asynccontextmanager
    async def host_lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.event_stream = stream
        started.append("host")
        yield

    app = FastAPI(lifespan=host_lifespan)
    gov = Governance.from_config(environ={}, **settings(tmp_path))
    assert install(app, gov, auth=header_auth) is gov

    async def flow() -> None:
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), \
                httpx.AsyncClient(transport=transport, base_url="http://mc") as client:
            alice = {"x-user": "alice:submitter"}
            decision = (await client.post("/api/ir/validate", json=ESCALATE_IR, headers=alice)).json()
            assert decision["status"] == "ESCALATE"
            created = await client.post("/api/ir/approvals", headers=alice,
                                        json={"tenant_id": "t1", "ir_hash": decision["ir_hash"]})
            request_id = created.json()["request_id"]
            granted = await client.post(f"/api/ir/approvals/{request_id}/grant", headers={"x-user": "bob:approver"})
            token = granted.json()["token"]
            clearance = (await client.post("/api/ir/authorize", headers=alice, json={
                "ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR), "approval_token": token})).json()
            assert clearance["allowed"] is True
            audit = (await client.post("/api/ir/diff-audit", headers=alice,
                                       json={"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR)})).json()
            assert audit["success"] is True
            assert await gov.aflush(5.0)
            assert stream.loop is asyncio.get_running_loop()  # delivered on the host's loop

    asyncio.run(flow())
    gov.close()
    assert started == ["host"]
    types = [e.type for e in stream.events]
    assert types[0] == "ir.validated_escalate"
    for expected in ("ir.approval_created", "ir.approval_consumed", "ir.dag_diff_ok"):
        assert expected in types
    consumed = next(e for e in stream.events if e.type == "ir.approval_consumed")
    assert consumed.tenant_id == "t1" and consumed.payload["consumed_by"] == "alice"
    assert consumed.meta["tenant_id"] == "t1"
    assert len({e.id for e in stream.events}) == len(stream.events)
    assert not any("irgap_" in str(e.payload) for e in stream.events)


def _sweepers() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "irgov-approval-sweeper" and not t.done()]


def test_the_host_lifespan_starts_and_stops_the_sweeper_each_time(tmp_path: Path) -> None:
    app = FastAPI()
    gov = Governance.from_config(environ={}, **settings(tmp_path))
    install(app, gov, auth=header_auth)

    async def one_lifespan() -> None:
        async with app.router.lifespan_context(app):
            assert len(_sweepers()) == 1
        await asyncio.sleep(0)
        assert _sweepers() == []

    asyncio.run(one_lifespan())
    asyncio.run(one_lifespan())  # a host restarted in the same process gets its sweeper back
    gov.close()


class SeedStyleStream:
    """A host stream written like the contract's own code: it logs `event.type.value`."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.events: list[Any] = []

    async def publish_event(self, event: Any) -> None:
        self.names.append(event.type.value)
        self.events.append(event)


class HostEvent:
    """The host's own event class, built by the factory handed to `install`."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def test_a_host_stream_reading_type_value_gets_host_events(tmp_path: Path) -> None:
    stream = SeedStyleStream()
    app = FastAPI()
    gov = Governance.from_config(environ={}, **settings(tmp_path))
    install(app, gov, auth=header_auth, event_stream=stream, event_factory=HostEvent)

    async def flow() -> None:
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), \
                httpx.AsyncClient(transport=transport, base_url="http://mc") as client:
            alice = {"x-user": "alice:submitter"}
            assert (await client.post("/api/ir/validate", json=ESCALATE_IR, headers=alice)).status_code == 200
            assert (await client.post("/api/ir/diff-audit", headers=alice,
                                      json={"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR)})).status_code == 200
            assert await gov.aflush(5.0)

    asyncio.run(flow())
    gov.close()
    assert stream.names == ["ir.validated_escalate", "ir.dag_diff_ok"]
    assert all(isinstance(e, HostEvent) for e in stream.events)
    assert stream.events[0].meta["tenant_id"] == "t1"
