"""`irgov approvals break-glass|consume|get|list|revoke|purge`: human approvals from the shell.

Approvals are normally minted by the kernel's workflow: a decision, a request, a grant by a
second person (`POST /approvals`, `POST /approvals/{id}/grant`). `break-glass` is the emergency
path around it: it mints a token with no decision and no second person, and says so everywhere
(the ledger, the approval, the event, a warning). The store, key and outbox are the
configuration's (`--config`, `IRGOV_*`), as for `irgov serve`; flags override.

Exit codes: 0 ok; 1 for an error, and for a consume that did not succeed. The token is printed
by `break-glass` and nowhere else; `consume` can read it from standard input (`--token -`) so
that it stays out of the process list and the shell history."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from ..approvals import Approval, ApprovalStatus
from ..errors import IrgovError
from ._common import echo_json, fail
from .options import (
    command_config,
    config_option,
    format_option,
    key_file_option,
    outbox_option,
    store_option,
)
from .wiring import approval_requests, approval_service

__all__ = ["approvals_group"]

_INT = re.compile(r"[+-]?\d+")
F = TypeVar("F", bound=Callable[..., Any])


def _store_options(func: F) -> F:
    for option in (format_option("text", "json"), outbox_option, store_option, config_option):
        func = option(func)
    return func

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


@approvals_group.command("break-glass")
@click.option("--tenant", required=True)
@click.option("--ir-hash", required=True, help="`ALGO:HEX` digest of the IR to approve")
@click.option("--by", "by", required=True, help="who mints the token (recorded as requester and approver)")
@click.option("--reason", required=True, help="why the normal workflow is bypassed (recorded, required)")
@click.option("--ttl", default=None, help="seconds until expiry (default: `approval_default_ttl`, 3600)")
@click.option("--ir-request-id", default=None,
              help="the IR's `request_id`: the `meta.correlation_id` of the approval's events (default: that "
                   "of the kernel's decision on the IR, if it made one)")
@key_file_option
@_store_options
def break_glass_command(tenant: str, ir_hash: str, by: str, reason: str, ttl: str | None, ir_request_id: str | None,
                        output_format: str) -> None:
    """Emergency: mint an approval token with no decision and no second person.

    Recorded in the ledger as an approval request made and granted by `--by`, its reason
    prefixed `break-glass: `; publishes `ir.approval_created` as a grant does; logs a warning.
    Prints the request, its approval and the token, once."""
    ttl_value = _parse_ttl(ttl)
    with approval_requests(command_config()) as workflow:
        grant = _run(lambda: workflow.break_glass(tenant, ir_hash, by, reason, ttl_seconds=ttl_value,
                                                  ir_request_id=ir_request_id))
    data = grant.to_dict()
    if output_format == "json":
        echo_json(data)
    else:
        for name, value in data.items():
            if value is not None and name != "approval":
                click.echo(f"{name:<14} {value}")
    click.echo("irgov: warning: break-glass approval recorded in the ledger; the token is shown once", err=True)


@approvals_group.command("create", hidden=True, context_settings={"ignore_unknown_options": True},
                         add_help_option=False)
@click.argument("ignored", nargs=-1, type=click.UNPROCESSED)
def create_command(ignored: tuple[str, ...]) -> None:
    """Gone: it minted tokens nobody decided or recorded."""
    fail("`irgov approvals create` is now `irgov approvals break-glass --tenant T --ir-hash H --by NAME "
         "--reason TEXT`, which records who minted the token and why; normal approvals go through "
         "`POST /approvals` and a grant")


@approvals_group.command("consume")
@click.option("--tenant", required=True)
@click.option("--ir-hash", required=True)
@click.option("--token", required=True, help="the token, or `-` to read it from standard input")
@click.option("--by", "consumed_by", default=None)
@click.option("--idempotency-key", default=None,
              help="a retry with the same key, token and --by gets the first success again")
@key_file_option
@_store_options
def consume_command(tenant: str, ir_hash: str, token: str, consumed_by: str | None, idempotency_key: str | None,
                    output_format: str) -> None:
    """Consume a token. Exit 0 when it succeeded, 1 otherwise."""
    if token == "-":
        token = sys.stdin.readline().strip()
    with approval_service(command_config(), needs_key=True) as service:
        result = _run(lambda: service.consume(token, tenant_id=tenant, ir_hash=ir_hash, consumed_by=consumed_by,
                                                      idempotency_key=idempotency_key))
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
def get_command(approval_id: str, tenant: str, output_format: str) -> None:
    """Show one approval of a tenant."""
    with approval_service(command_config(), needs_key=False) as service:
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
def list_command(tenant: str, status: str | None, limit: int, cursor: str | None,
                 output_format: str) -> None:
    """List a tenant's approvals, newest first."""
    with approval_service(command_config(), needs_key=False) as service:
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
def revoke_command(approval_id: str, tenant: str, by: str | None, reason: str | None,
                   output_format: str) -> None:
    """Revoke a pending approval (a finished one keeps its state). Exit 1 unless it ends revoked."""
    with approval_service(command_config(), needs_key=False) as service:
        approval = _run(lambda: service.revoke(approval_id, tenant, by, reason))
    if approval is None:
        fail(f"no approval `{approval_id}` for tenant `{tenant}`")
    _print_approval(approval, output_format)
    raise SystemExit(0 if approval.status is ApprovalStatus.REVOKED else 1)


@approvals_group.command("purge")
@click.option("--older-than", type=float, default=7 * 86400.0, show_default=True,
              help="seconds since an approval finished")
@_store_options
def purge_command(older_than: float, output_format: str) -> None:
    """Record due expiries, then delete approvals finished longer ago than `--older-than`."""
    with approval_service(command_config(), needs_key=False) as service:
        removed = _run(lambda: service.purge(older_than))
    if output_format == "json":
        echo_json({"purged": removed})
    else:
        click.echo(f"purged {removed} finished approvals")
