"""The `irgov` command line. Exit codes: 0 ok, 1 error; `check` and `test` add their own.

Commands are imported when they are run, not when the program starts: `irgov check` should not
pay for importing the approval stores, the HTTP server or the event sinks.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from .._version import __version__
from ..errors import PluginError
from ._common import EXIT_ERROR, OneLineFormatter

__all__ = ["main"]

# command name -> (module, attribute); the module is imported on first use.
COMMANDS: dict[str, tuple[str, str]] = {
    "approvals": ("approvals_cmd", "approvals_group"),
    "bundle": ("bundle_cmd", "bundle_group"),
    "check": ("check_cmd", "check_command"),
    "db": ("db_cmd", "db_group"),
    "diff": ("diff_cmd", "diff_command"),
    "events": ("events_cmd", "events_group"),
    "hash": ("hash_cmd", "hash_command"),
    "lint": ("lint_cmd", "lint_command"),
    "packs": ("packs_cmd", "packs_command"),
    "plugin": ("plugin_new_cmd", "plugin_group"),
    "plugins": ("plugins_cmd", "plugins_command"),
    "replay": ("replay_cmd", "replay_command"),
    "schema": ("schema_cmd", "schema_command"),
    "serve": ("serve_cmd", "serve_command"),
    "test": ("test_cmd", "test_command"),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they are looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module_name, attribute = COMMANDS[cmd_name]
            module = importlib.import_module(f".{module_name}", __name__)
            command = getattr(module, attribute)
            if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake
                raise TypeError(f"{module_name}.{attribute} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """Every error is one line, `irgov: error: ...`, with a documented exit code: 1 for usage
        and input errors, the command's own code otherwise; never a traceback."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            message = exc.format_message() if isinstance(exc, click.UsageError) else None
            if message is None:
                exc.show()
                sys.exit(exc.exit_code)
            click.echo(f"irgov: error: {message[:1].lower() + message[1:]}".rstrip("."), err=True)
            sys.exit(EXIT_ERROR)
        except click.exceptions.Abort:
            click.echo("irgov: error: aborted", err=True)
            sys.exit(EXIT_ERROR)
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            # A bug: one line for the user; the stack for whoever runs with IRGOV_LOG_LEVEL=DEBUG.
            logging.getLogger(__name__).debug("unexpected error", exc_info=exc)
            click.echo(f"irgov: error: unexpected {type(exc).__name__}: {_one_line(str(exc))}", err=True)
            sys.exit(EXIT_ERROR)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> object:
        # A broken plugin is found by whichever command loads plugins first: it reads the same
        # one line in all of them, never a traceback.
        try:
            return super().invoke(ctx)
        except PluginError as exc:
            from ._common import UsageFailure

            raise UsageFailure(str(exc)) from exc


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _configure_logging() -> None:
    """The library never configures logging; the program does: one line per record on stderr,
    warnings and up unless `IRGOV_LOG_LEVEL` says otherwise."""
    package_logger = logging.getLogger("irgov_policy")
    if os.environ.get("IRGOV_TRACE_PLUGINS", "").strip() not in ("", "0"):
        # Asked for explicitly: hook calls are logged at INFO, shown whatever the level below.
        logging.getLogger("irgov_policy.plugins.trace").setLevel(logging.INFO)
    if package_logger.handlers or logging.getLogger().handlers:
        return  # the host (or a test harness) already decides where records go
    level = os.environ.get("IRGOV_LOG_LEVEL", "WARNING").upper()
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter())
    package_logger.addHandler(handler)
    package_logger.setLevel(level if level in logging.getLevelNamesMapping() else logging.WARNING)
    # Audit lines (a change of the pack set in force, shadow divergences) are always shown.
    audit_logger = logging.getLogger("irgov_policy.audit")
    if audit_logger.getEffectiveLevel() > logging.INFO:
        audit_logger.setLevel(logging.INFO)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="irgov")
def main() -> None:
    """Governance for AI pipeline plans: validate, approve, audit.

    Set IRGOV_LOG_LEVEL (DEBUG, INFO, WARNING, ERROR) to see more or less of what happens, and
    IRGOV_TRACE_PLUGINS=1 to see each plugin hook call with its duration.
    """
    _configure_logging()
