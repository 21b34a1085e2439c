"""`irgov plugins`: installed plugins and the hooks each implements."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from ..errors import IrgovError
from ..plugins import list_plugins
from ._common import echo_json, fail


@click.command("plugins")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def plugins_command(output_format: str) -> None:
    """List plugins (built-in and installed) and the hooks each implements."""
    try:
        infos = list_plugins()
    except IrgovError as exc:
        fail(str(exc))
    if output_format == "json":
        echo_json([{"name": i.name, "version": i.version, "builtin": i.builtin, "hooks": list(i.hooks)} for i in infos])
        return
    table = Table("plugin", "version", "hooks")
    for info in infos:
        name = info.name + (" (built-in)" if info.builtin else "")
        table.add_row(name, info.version or "-", "\n".join(info.hooks))
    Console().print(table)
