"""Finding: a lone surrogate made the problem document itself unencodable, and the client got a
plain-text 500. The problem writer now renders any problem: lone surrogates are escaped, unsafe
headers dropped, and a document that still cannot be built falls back to a fixed 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from irgov_policy.http import ProblemError, create_app
from irgov_policy.http.problems import problem_response
from irgov_policy.kernel import Governance

from .conftest import settings

NASTY = "tenant \ud800 and \udfff\x00\u202e"


def _document(response: object) -> dict[str, object]:
    body = getattr(response, "body")  # noqa: B009 - a starlette Response's rendered bytes
    assert isinstance(body, bytes)
    return dict(json.loads(body.decode("utf-8")))


def test_lone_surrogates_are_escaped_in_every_field() -> None:
    problem = ProblemError(403, "forbidden-tenant", f"this principal may not act for tenant `{NASTY}`",
                           errors=[{"pointer": "/tenant_id\ud800", "message": NASTY}],
                           headers={"X-Fine": "yes", "X-Bad": "caf\u00e9\u2028", "X-Split": "a\r\nSet-Cookie: x"})
    response = problem_response(problem, "/approvals/\udc80")
    document = _document(response)
    assert response.status_code == 403
    assert document["detail"] == "this principal may not act for tenant `tenant \\ud800 and \\udfff\x00\u202e`"
    assert document["errors"] == [{"pointer": "/tenant_id\\ud800", "message": "tenant \\ud800 and \\udfff\x00\u202e"}]
    assert document["instance"] == "/approvals/\\udc80"
    assert response.headers["x-fine"] == "yes"
    assert "x-bad" not in response.headers and "x-split" not in response.headers and "set-cookie" not in response.headers


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize("status", [200, 999, -1])
def test_an_impossible_status_or_an_unprintable_value_still_renders(status: int) -> None:
    problem = ProblemError(status, "odd", "detail", errors=[{"pointer": "/", "message": _Unprintable()}])  # type: ignore[dict-item]
    response = problem_response(problem)
    document = _document(response)
    assert response.status_code == 500 and document["status"] == 500
    assert document["errors"] == [{"pointer": "/", "message": "an unprintable value"}]


def test_a_broken_errors_list_falls_back_to_a_fixed_problem() -> None:
    problem = ProblemError(422, "invalid-request", "x", errors=[42])  # type: ignore[list-item]
    response = problem_response(problem)
    assert response.status_code == 500
    assert _document(response)["detail"] == "the server failed to handle the request"


@pytest.fixture
def hostile_auth_client(tmp_path: Path) -> Iterator[TestClient]:
    """A host authenticator whose refusal echoes what the client sent, surrogates included."""

    def auth(request: Request) -> object:
        raise ProblemError(401, "unauthorized", f"unknown key `{NASTY}`",
                           headers={"WWW-Authenticate": 'Bearer realm="\u2603"'})

    gov = Governance.from_config(environ={}, **settings(tmp_path))
    with TestClient(create_app(governance=gov, auth=auth)) as client:  # type: ignore[arg-type]
        yield client
    gov.close()


def test_over_http_the_client_gets_a_problem_document_not_plain_text(hostile_auth_client: TestClient) -> None:
    response = hostile_auth_client.post("/validate", json={})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "unknown key `tenant \\ud800 and \\udfff\x00\u202e`"
