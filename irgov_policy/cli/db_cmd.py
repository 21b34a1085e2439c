"""`irgov db status|upgrade`: the schema versions of the configured databases, and their upgrade.

Both read the one configuration (`approval_store`, `outbox`: `--config`, `IRGOV_*`, `--store`,
`--outbox`). `status` changes nothing and exits 2 when a component is not at this version's
schema; `upgrade` applies the missing steps, one transaction each, printing each as it goes
(docs/deployment.md, "Schema versions and upgrades").
"""

from __future__ import annotations

import click

from ..approvals.schema import SchemaReport, schema_status, upgrade_schema
from ..errors import IrgovError
from ..storage.migrations import Step
from ._common import echo_json, fail
from .options import command_config, config_option, format_option, outbox_option, store_option

__all__ = ["EXIT_UPGRADE_NEEDED", "db_group"]

#: `irgov db status`: some component is older (or newer) than this version's schema
EXIT_UPGRADE_NEEDED = 2


@click.group("db")
def db_group() -> None:
    """Schema versions of the approval store and the outbox, and their upgrade."""


def _reports() -> list[SchemaReport]:
    config = command_config()
    try:
        return schema_status(config.approval_store, config.outbox)
    except IrgovError as exc:
        fail(str(exc))


@db_group.command("status")
@config_option
@store_option
@outbox_option
@format_option("text", "json")
def status_command(output_format: str) -> int:
    """Each component's schema version beside the one this version of irgov writes. Exit 0
    when all are up to date, 2 when one needs `irgov db upgrade` (or is newer than this version)."""
    reports = _reports()
    if output_format == "json":
        echo_json([r.to_dict() for r in reports])
    else:
        for report in reports:
            click.echo(f"{report.what} {report.address}")
            if report.note is not None:
                click.echo(f"  {report.note}")
            for row in report.components:
                click.echo(f"  {row.component:<10} version {row.found}, this version writes {row.latest}: "
                           f"{row.state}")
    behind = any(c.found != c.latest for r in reports for c in r.components)
    return EXIT_UPGRADE_NEEDED if behind else 0


@db_group.command("upgrade")
@config_option
@store_option
@outbox_option
def upgrade_command() -> None:
    """Bring every component to this version's schema, one step per transaction; a schema newer
    than this version is refused. Running it again applies nothing."""
    config = command_config()
    applied = 0

    def progress(database: str, component: str, step: Step) -> None:
        nonlocal applied
        applied += 1
        click.echo(f"{database}: {component} -> version {step.version}: {step.summary}")

    try:
        upgrade_schema(config.approval_store, config.outbox, progress)
    except IrgovError as exc:
        fail(str(exc))
    for report in _reports():
        versions = ", ".join(f"{c.component} {c.found}" for c in report.components) or (report.note or "")
        click.echo(f"{report.what} {report.address}: {versions}")
    click.echo(f"{applied} step(s) applied" if applied else "already up to date")
