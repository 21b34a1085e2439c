"""`irgov approvals create|consume|get|list|revoke|purge`: human approvals from the shell.

Exit codes: 0 ok; 1 for an error, and for a consume that did not succeed. The token is printed
by `create` and nowhere else; `consume` can read it from standard input (`--token -`) so that it
stays out of the process list and the shell history."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from rich.console import Console

from ..approvals import (
    KEY_ENV_VAR,
    Approval,
    ApprovalService,
    ApprovalStatus,
    KeyRing,
    load_keyring,
    open_store,
)
from ..approvals.keyfile import default_key_file, load_or_create_key_file
from ..errors import IrgovError
from ..storage import StoreURL
from ._common import echo_json, fail
from .events_publish import cli_event_bus

__all__ = ["approvals_group"]

DEFAULT_STORE = "sqlite:///./.irgov/approvals.db"
_INT = re.compile(r"[+-]?\d+")
F = TypeVar("F", bound=Callable[..., Any])


def _store_options(func: F) -> F:
    func = click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
                        show_default=True)(func)
    return click.option("--store", "store_url", default=DEFAULT_STORE, show_default=True,
                        envvar="IRGOV_APPROVAL_STORE",
                        help="memory://, sqlite:///path.db or redis://host:port/db")(func)


def _key_option(func: F) -> F:
    return click.option("--key-file", type=click.Path(dir_okay=False), default=None,
                        help=("server key file (`kid:base64secret` lines); default: $IRGOV_APPROVAL_KEY, else the "
                              "key generated next to a SQLite store (as `irgov serve` does)"))(func)


def _parse_ttl(text: str | None) -> int | float | None:
    """Numbers as typed: an integer stays an integer; anything else goes to the service's own
    checks, which refuse 0, negatives, NaN and infinity rather than coerce them."""
    if text is None:
        return None
    stripped = text.strip()
    if _INT.fullmatch(stripped):
        return int(stripped)
    try:
        return float(stripped)
    except ValueError:
        fail(f"`--ttl` = `{text}` is not a number of seconds")


def _keyring(store_url: str, key_file: str | None, *, may_create: bool) -> KeyRing:
    """The key from `--key-file` or `IRGOV_APPROVAL_KEY`; failing both, the embedded default's
    generated key next to a SQLite store, the same file the kernel and `irgov serve` use."""
    if key_file is not None or os.environ.get(KEY_ENV_VAR) or StoreURL.parse(store_url).scheme != "sqlite":
        return load_keyring(key_file=key_file)
    path = default_key_file(store_url)
    if may_create:
        return load_or_create_key_file(path)
    return load_keyring(key_file=path if path.exists() else None)


@contextmanager
def _service(store_url: str, key_file: str | None, *, needs_key: bool,
             may_create_key: bool = False) -> Iterator[ApprovalService]:
    try:
        key = _keyring(store_url, key_file, may_create=may_create_key) if (needs_key or key_file) else None
        store = open_store(store_url)
    except IrgovError as exc:
        fail(str(exc))
    try:
        with cli_event_bus() as bus:
            yield ApprovalService(store, key, bus=bus)
            if store.outbox_url:
                # The consumed event is recorded in the store's own outbox; the relay delivers it
                # before exit. Attached only once the command has worked: a store that cannot be
                # reached then fails with its one-line error alone, not with relay warnings too.
                try:
                    bus.attach_outbox(store.outbox_url)
                except IrgovError as exc:
                    click.echo(f"irgov: warning: {exc}", err=True)
    finally:
        store.close()


def _run(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except IrgovError as exc:
        fail(str(exc))


def _print_approval(approval: Approval, output_format: str, token: str | None = None) -> None:
    data = approval.to_dict()
    if token is not None:
        data["token"] = str(token)
    if output_format == "json":
        echo_json(data)
        return
    for name, value in data.items():
        if value is not None:
            click.echo(f"{name:<14} {value}")
    if token is not None:
        click.echo("the token is shown once: hand it to the approver now", err=True)


@click.group("approvals")
def approvals_group() -> None:
    """Human approvals: single-use tokens bound to a tenant and an IR hash."""


@approvals_group.command("create")
@click.option("--tenant", required=True)
@click.option("--ir-hash", required=True, help="`ALGO:HEX` digest of the IR to approve")
@click.option("--ttl", default=None, help="seconds until expiry (default 3600)")
@click.option("--by", "created_by", default=None)
@click.option("--reason", default=None)
@_key_option
@_store_options
def create_command(tenant: str, ir_hash: str, ttl: str | None, created_by: str | None, reason: str | None,
                   key_file: str | None, store_url: str, output_format: str) -> None:
    """Create a pending approval and print it with its token, once."""
    ttl_value = _parse_ttl(ttl)
    with _service(store_url, key_file, needs_key=True, may_create_key=True) as service:
        approval, token = _run(lambda: service.create(tenant, ir_hash, ttl_seconds=ttl_value,
                                                      created_by=created_by, reason=reason))
    _print_approval(approval, output_format, token)


@approvals_group.command("consume")
@click.option("--tenant", required=True)
@click.option("--ir-hash", required=True)
@click.option("--token", required=True, help="the token, or `-` to read it from standard input")
@click.option("--by", "consumed_by", default=None)
@_key_option
@_store_options
def consume_command(tenant: str, ir_hash: str, token: str, consumed_by: str | None, key_file: str | None,
                    store_url: str, output_format: str) -> None:
    """Consume a token. Exit 0 when it succeeded, 1 otherwise."""
    if token == "-":
        token = sys.stdin.readline().strip()
    with _service(store_url, key_file, needs_key=True) as service:
        result = _run(lambda: service.consume(token, tenant_id=tenant, ir_hash=ir_hash, consumed_by=consumed_by))
    if output_format == "json":
        echo_json(result.to_dict())
    else:
        console = Console(highlight=False)
        if result.success:
            console.print(f"[green]consumed[/green] {result.approval_id}")
        else:
            console.print(f"[red]refused[/red]: {result.reason.value if result.reason else 'unknown'}"
                          + (f" ({result.approval_id}, {result.status.value})" if result.approval_id and result.status
                             else ""))
    raise SystemExit(0 if result.success else 1)


@approvals_group.command("get")
@click.argument("approval_id")
@click.option("--tenant", required=True)
@_store_options
def get_command(approval_id: str, tenant: str, store_url: str, output_format: str) -> None:
    """Show one approval of a tenant."""
    with _service(store_url, None, needs_key=False) as service:
        approval = _run(lambda: service.get(approval_id, tenant))
    if approval is None:
        fail(f"no approval `{approval_id}` for tenant `{tenant}`")
    _print_approval(approval, output_format)


@approvals_group.command("list")
@click.option("--tenant", required=True)
@click.option("--status", type=click.Choice([s.value for s in ApprovalStatus]), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--cursor", default=None, help="`next_cursor` of the previous page")
@_store_options
def list_command(tenant: str, status: str | None, limit: int, cursor: str | None, store_url: str,
                 output_format: str) -> None:
    """List a tenant's approvals, newest first."""
    with _service(store_url, None, needs_key=False) as service:
        page = _run(lambda: service.list(tenant, status, limit, cursor))
    if output_format == "json":
        echo_json({"items": [a.to_dict() for a in page.items], "next_cursor": page.next_cursor})
        return
    for approval in page.items:
        data = approval.to_dict()
        click.echo(f"{data['approval_id']}  {data['status']:<8}  {data['created_at']}  {data['expires_at']}  "
                   f"{data['ir_hash']}")
    if page.next_cursor:
        click.echo(f"next page: --cursor {page.next_cursor}")


@approvals_group.command("revoke")
@click.argument("approval_id")
@click.option("--tenant", required=True)
@click.option("--by", default=None)
@click.option("--reason", default=None)
@_store_options
def revoke_command(approval_id: str, tenant: str, by: str | None, reason: str | None, store_url: str,
                   output_format: str) -> None:
    """Revoke a pending approval (a finished one keeps its state). Exit 1 unless it ends revoked."""
    with _service(store_url, None, needs_key=False) as service:
        approval = _run(lambda: service.revoke(approval_id, tenant, by, reason))
    if approval is None:
        fail(f"no approval `{approval_id}` for tenant `{tenant}`")
    _print_approval(approval, output_format)
    raise SystemExit(0 if approval.status is ApprovalStatus.REVOKED else 1)


@approvals_group.command("purge")
@click.option("--older-than", type=float, default=7 * 86400.0, show_default=True,
              help="seconds since an approval finished")
@_store_options
def purge_command(older_than: float, store_url: str, output_format: str) -> None:
    """Record due expiries, then delete approvals finished longer ago than `--older-than`."""
    with _service(store_url, None, needs_key=False) as service:
        removed = _run(lambda: service.purge(older_than))
    if output_format == "json":
        echo_json({"purged": removed})
    else:
        click.echo(f"purged {removed} finished approvals")
