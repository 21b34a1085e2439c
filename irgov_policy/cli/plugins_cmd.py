"""`irgov plugins`: installed plugins, the hooks each implements and what each registered."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from ..plugin_registry import KINDS
from ..plugins import PluginInfo, list_plugins
from ..policy.plugin_hooks import collect_cel_functions
from ._common import echo_json
from .options import format_option

__all__ = ["plugins_command"]


def _describe(info: PluginInfo) -> list[str]:
    origin = ", ".join(part for part in (info.distribution, info.module) if part)
    title = f"{info.name} {info.version or '-'}" + (" (built-in)" if info.builtin else "")
    lines = [title + (f"  [{origin}]" if origin else ""), f"  hooks: {', '.join(info.hooks) or '-'}"]
    for kind in KINDS.values():
        names = info.registered.get(kind.key, ())
        if names:
            lines.append(f"  {kind.label}s: {', '.join(names)}")
    return lines


@click.command("plugins")
@format_option("text", "json", help="`json`: per plugin its name, distribution, version, module, hooks and "
                                     "`registered` names")
@click.option("-v", "--verbose", is_flag=True,
              help="per plugin, its distribution and everything it registered (checks, functions, packs...)")
def plugins_command(output_format: str, verbose: bool) -> None:
    """List plugins (built-in and installed), the hooks each implements and what each registered.

    A broken plugin (unknown hook, wrong signature, a raise, a name two plugins register) is one
    error line naming it. IRGOV_TRACE_PLUGINS=1 logs each hook call with its duration."""
    infos = list_plugins()
    collect_cel_functions()  # what only policy refuses (a plugin shadowing a built-in function)
    if output_format == "json":
        echo_json([info.to_dict() for info in infos])
        return
    if verbose:
        click.echo("\n".join(line for info in infos for line in _describe(info)))
        return
    table = Table("plugin", "version", "hooks")
    for info in infos:
        name = info.name + (" (built-in)" if info.builtin else "")
        table.add_row(name, info.version or "-", "\n".join(info.hooks))
    Console().print(table)
