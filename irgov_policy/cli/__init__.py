"""The `irgov` command line. Exit codes: 0 ok, 1 error; `check` and `test` add their own."""

from __future__ import annotations

import click

from .._version import __version__
from .approvals_cmd import approvals_group
from .check_cmd import check_command
from .diff_cmd import diff_command
from .events_cmd import events_group
from .hash_cmd import hash_command
from .lint_cmd import lint_command
from .plugins_cmd import plugins_command
from .schema_cmd import schema_command
from .serve_cmd import serve_command
from .test_cmd import test_command

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="irgov")
def main() -> None:
    """Governance for AI pipeline plans: validate, approve, audit."""


main.add_command(hash_command)
main.add_command(diff_command)
main.add_command(plugins_command)
main.add_command(events_group)
main.add_command(check_command)
main.add_command(schema_command)
main.add_command(serve_command)
main.add_command(approvals_group)
main.add_command(test_command)
main.add_command(lint_command)
