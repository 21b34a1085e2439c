"""Finding: unauthenticated, unbounded bodies. Every route authenticates before it reads a body
and refuses a body over `max_bytes` while it streams, declared or chunked, also when a host
mounts the router. The live tests stream real chunked requests at a uvicorn server and read the
server's peak resident memory."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from irgov_policy.http import create_app, create_router
from irgov_policy.kernel import Governance

from .conftest import API_KEYS, bearer, settings
from .live import free_port, running
from .streaming import peak_resident_bytes, stream_body

REQUEST_ID = "areq_" + "0" * 32
BODY_ROUTES = ["/validate", "/diff-audit", "/authorize", "/approvals", "/approvals/consume",
               f"/approvals/{REQUEST_ID}/grant", f"/approvals/{REQUEST_ID}/revoke"]
LIMIT = 4096


def _chunks(total: int, size: int = 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"7" * size


@pytest.fixture(params=["standalone", "mounted"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    gov = Governance.from_config(environ={}, **settings(tmp_path, max_bytes=LIMIT))
    if request.param == "standalone":
        app, prefix = create_app(governance=gov), ""
    else:
        app, prefix = FastAPI(), "/gov"
        app.include_router(create_router(gov), prefix=prefix)
    with TestClient(app) as client:
        yield client, prefix
    gov.close()


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_no_body_is_read_before_authentication(api: tuple[TestClient, str], path: str) -> None:
    client, prefix = api
    for headers in ({}, {"Authorization": "Bearer not-a-configured-key-000"}):
        response = client.post(prefix + path, content=b"{not json", headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        response = client.post(prefix + path, content=_chunks(LIMIT * 4), headers=headers)
        assert response.status_code == 401, response.text


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_an_authenticated_body_over_the_limit_is_refused(api: tuple[TestClient, str], path: str) -> None:
    client, prefix = api
    declared = client.post(prefix + path, content=b"7" * (LIMIT + 1), headers=bearer("root"))
    assert declared.status_code == 413, declared.text
    assert declared.json()["detail"] == f"the body of {LIMIT + 1} bytes exceeds the limit of {LIMIT} bytes"
    chunked = client.post(prefix + path, content=_chunks(LIMIT * 4), headers=bearer("root"))
    assert chunked.status_code == 413, chunked.text
    assert chunked.json()["detail"] == f"the body exceeds the limit of {LIMIT} bytes"


def test_a_body_within_the_limit_still_works(api: tuple[TestClient, str]) -> None:
    client, prefix = api
    response = client.post(prefix + "/approvals", json={"tenant_id": "t1", "ir_hash": "sha256:" + "0" * 64},
                           headers=bearer("alice"))
    assert response.status_code == 409, response.text  # parsed and refused: this server never escalated it


BIG = 64 * 1024 * 1024


@pytest.fixture(scope="module", params=["standalone", "mounted"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, int]]:
    workdir = tmp_path_factory.mktemp("guard")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IRGOV_")}
    env["IRGOV_API_KEYS"] = ",".join(API_KEYS)
    if request.param == "standalone":
        argv, prefix = [sys.executable, "-c", "from irgov_policy.cli import main; main()", "serve",
                        "--port", str(port), "--log-level", "warning"], ""
    else:
        argv, prefix = [sys.executable, str(Path(__file__).with_name("host_app.py")), str(port)], "/gov"
    with running(argv, cwd=workdir, env=env, health_url=f"http://127.0.0.1:{port}{prefix}/health") as process:
        yield port, prefix, process.pid


@pytest.mark.slow
def test_endless_bodies_leave_resident_memory_bounded(live: tuple[int, str, int]) -> None:
    """The attack: four parallel 64 MiB unauthenticated chunked bodies, then authenticated
    ones over the 8 MiB default limit, chunked and declared. Each is answered early (401 or
    413) and the server's peak resident memory grows by far less than one body."""
    port, prefix, pid = live
    before = peak_resident_bytes(pid)
    attacks = [(prefix + path, {}, True) for path in BODY_ROUTES[3:]]
    attacks += [(prefix + "/approvals", {}, False), (prefix + "/validate", bearer("root"), True),
                (prefix + "/approvals", bearer("alice"), True), (prefix + "/authorize", bearer("alice"), False)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda a: stream_body(port, a[0], headers=a[1], total=BIG, chunked=a[2]), attacks))
    grown = peak_resident_bytes(pid) - before
    for (path, headers, _), result in zip(attacks, results, strict=True):
        assert result.status in ((413,) if headers else (401,)), (path, result)
        assert result.sent < BIG, (path, result)
    assert grown < 40 * 1024 * 1024, f"peak resident memory grew by {grown / 2**20:.0f} MiB"
