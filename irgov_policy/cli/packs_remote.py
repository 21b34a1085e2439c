"""`irgov packs --server URL`: the pack set in force on a running server (`GET /packs`), and a
reload of it (`--reload`, `POST /packs/reload`). The api key is read from `IRGOV_API_KEY`, never
from the command line, where other users could read it."""

from __future__ import annotations

import os
from typing import Any

import click

from ._common import echo_json, fail

__all__ = ["API_KEY_VARIABLE", "remote_packs"]

API_KEY_VARIABLE = "IRGOV_API_KEY"
TIMEOUT_SECONDS = 60.0  # a reload lints and runs the policy tests before it answers


def _request(method: str, url: str, key: str) -> dict[str, Any]:
    try:
        import httpx
    except ImportError:
        fail("`irgov packs --server` needs the `http` extra: pip install 'irgov-policy[http]'")
    try:
        response = httpx.request(method, url, headers={"Authorization": f"Bearer {key}"}, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        fail(f"cannot reach `{url}`: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    try:
        body: Any = response.json()
    except ValueError:
        fail(f"`{url}` answered {response.status_code} without json")
    if response.status_code != 200:
        detail = body.get("detail") if isinstance(body, dict) else None
        fail(f"`{url}` answered {response.status_code}: {detail or 'no detail'}")
    if not isinstance(body, dict):
        fail(f"`{url}` answered something that is not a json object")
    return body


def _print_reload(label: str, reload: dict[str, Any] | None) -> None:
    if reload is None:
        return
    outcome = ("changed" if reload.get("changed") else "unchanged") if reload.get("ok") else "failed"
    line = f"{label}: {outcome} at {reload.get('at')} by {reload.get('by')} ({reload.get('trigger')})"
    if reload.get("error"):
        line += f": {reload['error']}"
    click.echo(line)


def remote_packs(server: str, output_format: str, reload: bool) -> None:
    key = os.environ.get(API_KEY_VARIABLE)
    if not key:
        fail(f"set `{API_KEY_VARIABLE}` to an api key of the server (an admin of every tenant for --reload)")
    base = server.rstrip("/")
    result = _request("POST", base + "/packs/reload", key) if reload else None
    status = _request("GET", base + "/packs", key)
    if output_format == "json":
        echo_json(status if result is None else {"reload": result, "packs": status})
        if result is not None and not result.get("ok"):
            raise SystemExit(1)
        return
    if result is not None:
        _print_reload("reload", result)
    click.echo(f"pack set {status.get('digest')}, engine {status.get('engine')}, loaded {status.get('loaded_at')} "
               f"by {status.get('loaded_by')}")
    for pack in status.get("packs", []):
        click.echo(f"{pack.get('name')}@{pack.get('version')} {pack.get('digest')}")
    click.echo(f"reloads: {status.get('reloads')}, failed: {status.get('failed_reloads')}, "
               f"watching: {'yes' if status.get('watching') else 'no'}")
    _print_reload("last reload", status.get("last_reload"))
    error = status.get("last_reload_error")
    if error is not None and error != status.get("last_reload"):
        _print_reload("last failed reload", error)
    shadow = status.get("shadow")
    if shadow:
        click.echo(f"shadow {shadow.get('digest')}: {shadow.get('decisions')} decisions, "
                   f"{shadow.get('divergences')} divergences")
    log = status.get("decision_log")
    if log:
        click.echo(f"decision log {log.get('path')} ({log.get('redact')}): {log.get('written')} written, "
                   f"{log.get('failed')} failed")
    if result is not None and not result.get("ok"):
        raise SystemExit(1)
