"""The event contract, both ways: one JSON Schema per event type (`events.payloads.event_schema`:
the envelope with the type's payload schema, every object closed), and

- the seed's nine payload examples, and its envelope example, validate against those schemas and
  are read back unchanged by the package's own readers (the envelope parser, the CloudEvents
  mapping, the SQLite outbox and its source, the relay, the host stream sink);
- all nine event types, produced for real through each face the package has (the `irgov` command
  line, the HTTP API, and the host integration `install(app)` with a host stream written like the
  seed's code, `event.type.value`), validate against the same schemas: nothing missing, nothing the
  schema does not list; every approval event carries the IR's `request_id` as `meta.correlation_id`.

The seed's examples are kept verbatim in `data/seed_events.json`. Two things in them are notation,
not values, and are read as such here: an elided digest (`"sha256:abcd1234..."`) is completed to a
full digest (the sha256 of what precedes the dots, so distinct placeholders stay distinct), and
`approval_invalid.reason` lists its four alternatives (`"a | b | c | d"`), each checked."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient
from http_api.conftest import bearer, settings
from kernel.flows import ESCALATE_IR, PASS_IR, REJECT_IR, dag_for

from irgov_policy.cli import main
from irgov_policy.events import EventBus, EventType, ExtensionEventType, MemorySink
from irgov_policy.events.cloudevent import from_cloudevent, to_cloudevent
from irgov_policy.events.envelope import Event, format_timestamp
from irgov_policy.events.outbox_sqlite import SqliteOutbox, append_event_in_transaction, ensure_outbox_schema
from irgov_policy.events.payloads import event_problems, event_schema, payload_problems
from irgov_policy.events.sinks.host_stream import HostEventStreamSink
from irgov_policy.events.sources import SqliteSource
from irgov_policy.http import Principal, Role, create_app
from irgov_policy.integrations.mission_control import install
from irgov_policy.kernel import Governance

SEED = json.loads((Path(__file__).parent / "data" / "seed_events.json").read_text("utf-8"))
NINE = [t.value for t in EventType]
APPROVAL_TYPES = {"ir.approval_created", "ir.approval_consumed", "ir.approval_expired", "ir.approval_invalid"}
_ELIDED = re.compile(r"^([a-z0-9]+):([^.]*)\.\.\.$")


# -- the seed's examples -------------------------------------------------------------------------


def _complete(value: Any) -> Any:
    """The seed's notation made concrete: elided digests completed (see the module docstring)."""
    if isinstance(value, dict):
        return {k: _complete(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_complete(v) for v in value]
    if isinstance(value, str) and (match := _ELIDED.match(value)):
        return f"{match[1]}:{hashlib.sha256(match[2].encode()).hexdigest()}"
    return value


def seed_payloads(event_type: str) -> list[dict[str, Any]]:
    payload = _complete(SEED["payloads"][event_type])
    reason = payload.get("reason")
    if event_type == "ir.approval_invalid" and isinstance(reason, str) and " | " in reason:
        return [{**payload, "reason": alternative} for alternative in reason.split(" | ")]
    return [payload]


def seed_events() -> list[dict[str, Any]]:
    """Every seed payload in the seed's own envelope example (its id, time and meta)."""
    events = []
    for event_type in NINE:
        for payload in seed_payloads(event_type):
            events.append({**copy.deepcopy(SEED["envelope"]), "type": event_type, "payload": payload})
    return events


def test_the_seed_file_holds_the_nine_types_and_the_invalid_reason_its_four() -> None:
    assert list(SEED["payloads"]) == NINE
    assert {p["reason"] for p in seed_payloads("ir.approval_invalid")} == {
        "token_not_found", "tenant_mismatch", "ir_hash_mismatch", "already_consumed"}


@pytest.mark.parametrize("event_type", NINE)
def test_each_seed_payload_example_validates_against_its_schema(event_type: str) -> None:
    for payload in seed_payloads(event_type):
        assert payload_problems(event_type, payload) == [], payload
        event = {**copy.deepcopy(SEED["envelope"]), "type": event_type, "payload": payload}
        assert event_problems(event) == []


def test_the_seed_envelope_example_validates_as_written() -> None:
    example = copy.deepcopy(SEED["envelope"])
    assert example["type"] == SEED["envelope_example_type"]
    example["payload"] = seed_payloads(example["type"])[0]  # its `{ /* above */ }`
    assert event_problems(example) == []


def _walk_objects(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            yield schema
        for value in schema.values():
            yield from _walk_objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _walk_objects(value)


@pytest.mark.parametrize("event_type", NINE)
def test_every_object_of_every_schema_is_closed(event_type: str) -> None:
    """So "validates" also means "holds nothing the contract does not list", at every level."""
    objects = list(_walk_objects(event_schema(event_type)))
    assert objects and all(o.get("additionalProperties") is False for o in objects)
    event = next(e for e in seed_events() if e["type"] == event_type)
    for where in (event, event["payload"], event["meta"]):
        where["unlisted"] = 1
        assert any("unlisted" in p for p in event_problems(event)), where
        del where["unlisted"]


def test_irgov_schema_prints_the_same_schema_for_each_type() -> None:
    for event_type in NINE:
        result = CliRunner().invoke(main, ["schema", event_type], catch_exceptions=False)
        assert result.exit_code == 0 and json.loads(result.output) == event_schema(event_type)


class SeedStyleStream:
    """A host stream written like the seed's producer code: it logs `event.type.value`."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.names: list[str] = []

    async def publish_event(self, event: Any) -> None:
        self.names.append(event.type.value)
        self.events.append(event)


class HostEvent:
    """The host's own event class (what `event_factory` builds)."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def _host_dict(event: Any) -> dict[str, Any]:
    """A host event as an envelope document, to validate it like any other event."""
    assert event.tenant_id == event.meta["tenant_id"] and event.correlation_id == event.meta["correlation_id"]
    return {"id": event.id, "type": event.type.value, "source": event.source, "target": event.target,
            "timestamp": format_timestamp(event.timestamp), "payload": dict(event.payload), "meta": dict(event.meta)}


def test_the_seed_events_are_read_back_unchanged_by_our_readers(tmp_path: Path) -> None:
    documents = seed_events()
    for number, document in enumerate(documents):
        document["id"] = f"evt_uuid_v4_{number}"  # one example id; the outbox keys events by id
    events = [Event.from_dict(d) for d in documents]
    assert [e.to_dict() for e in events] == documents  # the envelope parser
    assert [from_cloudevent(to_cloudevent(e)).to_dict() for e in events] == documents  # CloudEvents
    assert [Event.from_json(e.to_json()).to_dict() for e in events] == documents

    # A store's outbox table holding the seed's events, drained by the relay of another outbox
    # into a sink and into the host stream: every event arrives as the seed wrote it.
    store_file = tmp_path / "store.db"
    conn = sqlite3.connect(store_file)
    ensure_outbox_schema(conn)
    for event in events:
        append_event_in_transaction(conn, event)
    conn.commit()
    conn.close()
    source = SqliteSource(str(store_file))
    read, _ = source.read(None, 100)
    source.close()
    assert [e.to_dict() for e in read] == documents

    sink, stream = MemorySink("m"), SeedStyleStream()
    bus = EventBus([sink, HostEventStreamSink(stream)], outbox=SqliteOutbox(tmp_path / "relay.db"),
                   observers=False)
    try:
        bus.attach_outbox(f"sqlite:///{store_file}")
        assert bus.flush(10.0)
    finally:
        bus.close()
    assert [e.to_dict() for e in sink.events] == documents
    assert stream.names == [d["type"] for d in documents]
    assert [_host_dict(e) for e in stream.events] == documents


# -- the events the package emits, through each face ----------------------------------------------


def _assert_the_contract(documents: list[dict[str, Any]], face: str) -> None:
    found = {d["type"] for d in documents}
    assert found & set(NINE) == set(NINE), (face, sorted(found))
    # beyond the nine, only the documented extension types (a consumer may ignore them)
    assert found - set(NINE) <= {t.value for t in ExtensionEventType}, (face, sorted(found))
    for document in documents:
        assert event_problems(document) == [], (face, document["type"], document)
    assert len({d["id"] for d in documents}) == len(documents)


def _assert_correlated(documents: list[dict[str, Any]], request_id: str, face: str) -> None:
    """Every approval event of the flow carries the IR's request id (an invalid consume of an
    unknown token included: the kernel's decision on that IR names it)."""
    approval_events = [d for d in documents if d["type"] in APPROVAL_TYPES]
    assert {d["type"] for d in approval_events} == APPROVAL_TYPES
    assert {d["meta"]["correlation_id"] for d in approval_events} == {request_id}, face
    for document in documents:
        if document["type"] not in APPROVAL_TYPES:
            assert document["meta"]["correlation_id"] == document["payload"]["request_id"], face


def _tampered(doc: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = dag_for(doc)
    nodes[0] = {**nodes[0], "action": "infra.destroy"}  # the right claimed hash, other content
    return nodes


def test_the_command_line_emits_the_nine_events_of_the_contract(tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    env = {"IRGOV_APPROVAL_STORE": f"sqlite:///{tmp_path}/state/approvals.db",
           "IRGOV_OUTBOX": f"sqlite:///{tmp_path}/state/outbox.db",
           "IRGOV_EVENT_SINKS": f"jsonl://{events_file}", "IRGOV_CONFIG": ""}
    runner = CliRunner()

    def irgov(*args: str) -> Any:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    files = {}
    for name, document in {"pass": PASS_IR, "escalate": ESCALATE_IR, "reject": REJECT_IR}.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(document))
    (tmp_path / "dag.json").write_text(json.dumps(dag_for(ESCALATE_IR)))
    (tmp_path / "tampered.json").write_text(json.dumps(_tampered(ESCALATE_IR)))

    assert irgov("check", str(files["pass"])).exit_code == 0
    assert irgov("check", str(files["reject"])).exit_code == 4
    escalated = irgov("check", "--format", "json", str(files["escalate"]))
    assert escalated.exit_code == 3
    ir_hash = json.loads(escalated.output)["ir_hash"]
    minted = irgov("approvals", "break-glass", "--tenant", "t1", "--ir-hash", ir_hash, "--by", "ops",
                   "--reason", "incident 7", "--ir-request-id", ESCALATE_IR["request_id"], "--format", "json")
    token = json.loads(minted.output[: minted.output.rindex("}") + 1])["token"]
    consume = ("approvals", "consume", "--tenant", "t1", "--ir-hash", ir_hash, "--by", "deployer")
    assert irgov(*consume, "--token", token).exit_code == 0
    assert irgov(*consume, "--token", token).exit_code == 1  # already consumed
    short = irgov("approvals", "break-glass", "--tenant", "t1", "--ir-hash", ir_hash, "--by", "ops",
                  "--reason", "incident 8", "--ttl", "1", "--ir-request-id", ESCALATE_IR["request_id"],
                  "--format", "json")
    short_token = json.loads(short.output[: short.output.rindex("}") + 1])["token"]
    time.sleep(1.2)
    assert irgov(*consume, "--token", short_token).exit_code == 1  # expired
    assert irgov("diff", str(files["escalate"]), str(tmp_path / "dag.json")).exit_code == 0
    assert irgov("diff", str(files["escalate"]), str(tmp_path / "tampered.json")).exit_code == 1

    documents = [json.loads(line) for line in events_file.read_text("utf-8").splitlines()]
    _assert_the_contract(documents, "cli")
    # `irgov check` records no decision: the break-glass approvals name the IR with `--ir-request-id`,
    # and a consume of no known approval finds no decision to name it by.
    approval_events = [d for d in documents if d["type"] in APPROVAL_TYPES]
    assert {d["meta"]["correlation_id"] for d in approval_events} == {ESCALATE_IR["request_id"]}
    for document in documents:
        if document["type"] not in APPROVAL_TYPES:
            assert document["meta"]["correlation_id"] == document["payload"]["request_id"]


def _http_flow(client: Any, request_id_of_ir: str, headers: dict[str, dict[str, str]]) -> None:
    """The nine events through the API: three decisions, a grant, a gate that consumes, a replay,
    a tampered DAG, and a token used after its expiry."""
    alice, bob = headers["alice"], headers["bob"]
    for document in (PASS_IR, REJECT_IR):
        assert client.post("/validate", json=document, headers=alice).status_code == 200
    decision = client.post("/validate", json=ESCALATE_IR, headers=alice).json()
    assert decision["status"] == "ESCALATE" and decision["request_id"] == request_id_of_ir

    def granted(ttl: int | None = None) -> str:
        request = client.post("/approvals", json={"tenant_id": "t1", "ir_hash": decision["ir_hash"]}, headers=alice)
        assert request.status_code == 201, request.text
        grant = client.post(f"/approvals/{request.json()['request_id']}/grant",
                            json={} if ttl is None else {"ttl_seconds": ttl}, headers=bob)
        assert grant.status_code == 200, grant.text
        return str(grant.json()["token"])

    token, short = granted(), granted(ttl=1)
    gate = {"ir": ESCALATE_IR, "dag": dag_for(ESCALATE_IR)}
    assert client.post("/authorize", json={**gate, "approval_token": token}, headers=alice).json()["allowed"]
    assert not client.post("/authorize", json={**gate, "approval_token": token}, headers=alice).json()["allowed"]
    audit = client.post("/diff-audit", json={"ir": ESCALATE_IR, "dag": _tampered(ESCALATE_IR)}, headers=alice)
    assert audit.status_code == 200 and audit.json()["success"] is False
    time.sleep(1.2)
    consume = client.post("/approvals/consume", headers=alice,
                          json={"tenant_id": "t1", "ir_hash": decision["ir_hash"], "token": short})
    assert consume.status_code in (200, 409, 410), consume.text
    assert consume.json().get("success") is not True


def test_the_http_api_emits_the_nine_events_of_the_contract(tmp_path: Path) -> None:
    sink = MemorySink("contract")
    gov = Governance.from_config(environ={}, sinks=[sink], **settings(tmp_path))
    with TestClient(create_app(governance=gov)) as client:
        _http_flow(client, ESCALATE_IR["request_id"], {"alice": bearer("alice"), "bob": bearer("bob")})
        assert gov.flush(10.0)
    gov.close()
    documents = [e.to_dict() for e in sink.events]
    _assert_the_contract(documents, "http")
    _assert_correlated(documents, ESCALATE_IR["request_id"], "http")


def _header_auth(request: Any) -> Principal:
    name, _, role = request.headers.get("x-user", "anonymous:submitter").partition(":")
    return Principal(name, Role(role), frozenset({"t1"}))


class _AsyncBridge:
    """Runs the synchronous flow's calls on the host app through httpx's ASGI transport."""

    def __init__(self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop, prefix: str) -> None:
        self.client, self.loop, self.prefix = client, loop, prefix

    def post(self, path: str, **kwargs: Any) -> Any:
        future = asyncio.run_coroutine_threadsafe(self.client.post(self.prefix + path, **kwargs), self.loop)
        return future.result(30)


def test_the_host_integration_emits_the_nine_events_into_the_host_stream(tmp_path: Path) -> None:
    stream = SeedStyleStream()
    app = FastAPI()
    gov = Governance.from_config(environ={}, **settings(tmp_path))
    install(app, gov, auth=_header_auth, event_stream=stream, event_factory=HostEvent)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), \
                httpx.AsyncClient(transport=transport, base_url="http://mc") as client:
            bridge = _AsyncBridge(client, loop, "/api/ir")
            # The flow is synchronous (it sleeps past a TTL): it runs in a thread, its requests on this loop.
            await asyncio.to_thread(_http_flow, bridge, ESCALATE_IR["request_id"],
                                    {"alice": {"x-user": "alice:submitter"}, "bob": {"x-user": "bob:approver"}})
            assert await gov.aflush(10.0)

    asyncio.run(run())
    gov.close()
    assert all(isinstance(e, HostEvent) for e in stream.events)
    assert stream.names == [e.type.value for e in stream.events]
    documents = [_host_dict(e) for e in stream.events]
    _assert_the_contract(documents, "host")
    _assert_correlated(documents, ESCALATE_IR["request_id"], "host")
