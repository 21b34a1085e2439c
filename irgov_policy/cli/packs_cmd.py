"""`irgov packs`: the rule packs in force for the configuration, as `GET /packs` lists them."""

from __future__ import annotations

import click

from ..config import GovernanceConfig
from ..policy.inventory import pack_set_view
from ._common import echo_json, fail
from .options import command_config, config_option, engine_option, format_option, packs_option
from .packs_remote import remote_packs
from .wiring import engine_for

__all__ = ["packs_command", "run_packs"]


@click.command("packs")
@config_option
@packs_option
@engine_option
@format_option("text", "json")
@click.option("--server", metavar="URL", default=None,
              help="show the set in force on a running server instead (`GET /packs`: loaded_at, digest, "
                   "last reload and its error); the api key is read from `IRGOV_API_KEY`")
@click.option("--reload", "reload_first", is_flag=True,
              help="with --server: reload its packs first (`POST /packs/reload`, an admin of every tenant); "
                   "exit 1 when the reload fails")
def packs_command(output_format: str, server: str | None, reload_first: bool) -> None:
    """List the rule packs `irgov check` and `irgov serve` decide with for this configuration:
    the set's digest and engine, and per pack its name, version, digest, file, rule and tier
    counts (what `GET /packs` shows of the set in force)."""
    if server is not None:
        remote_packs(server, output_format, reload_first)
        return
    if reload_first:
        fail("`--reload` needs `--server`: a configuration alone has no running set to reload")
    run_packs(command_config(), output_format)


def run_packs(config: GovernanceConfig, output_format: str) -> None:
    view = pack_set_view(engine_for(config))
    if output_format == "json":
        echo_json(view)
        return
    click.echo(f"pack set {view['digest']}, engine {view['engine']}")
    for pack in view["packs"]:
        # `name@version digest` as `irgov check --explain` names a pack
        click.echo(f"{pack['name']}@{pack['version']} {pack['digest']}  {pack['rules']} rules, "
                   f"{pack['tiers']} tiers, engine {pack['engine']}")
        click.echo(f"  {pack['path']}")
