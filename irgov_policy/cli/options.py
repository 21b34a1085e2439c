"""The flags verbs share, one decorator each, and the configuration they make.

Every verb reads one `GovernanceConfig`: the defaults, then the file of `--config` (else
`IRGOV_CONFIG`), then every `IRGOV_*` variable, then the flags given on the command line. A flag
that names a setting (`--packs`, `--engine`, `--store`, `--outbox`, `--algorithm`, ...) is not
passed to the command: it is recorded as an override, and `command_config()` builds the
configuration with it. A flag left out leaves the configuration's value, so `irgov check` and
`irgov serve` decide with the same packs for the same configuration.

`--format` speaks one vocabulary: `text` for people, `json` for one document, `jsonl` for one
document per line; verbs add a format only where none of these means it (`junit`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..config import GovernanceConfig
from ..errors import ConfigError
from ..kernel.build import resolve_config
from ._common import fail

__all__ = [
    "ENGINES",
    "algorithm_option",
    "budget_option",
    "command_config",
    "config_option",
    "engine_option",
    "format_option",
    "key_file_option",
    "outbox_option",
    "packs_option",
    "setting_given",
    "store_option",
]

F = TypeVar("F", bound=Callable[..., Any])

_OVERRIDES = "irgov.overrides"
_CONFIG_PATH = "irgov.config_path"
ENGINES = ("auto", "celpy", "cel-cpp")


def _record(setting: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value == ():
            return  # not given: the configuration decides
        ctx.meta.setdefault(_OVERRIDES, {})[setting] = tuple(value) if isinstance(value, tuple | list) else value

    return callback


def _setting_option(*names: str, setting: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*names, callback=_record(setting), expose_value=False, default=None, **kwargs)


def config_option(func: F) -> F:
    """`--config FILE`: the configuration file (YAML or TOML); default `IRGOV_CONFIG`."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.meta[_CONFIG_PATH] = value

    return click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                        callback=callback, expose_value=False, metavar="FILE",
                        help="configuration file (YAML or TOML); default: $IRGOV_CONFIG; "
                             "`IRGOV_*` variables, then flags, apply on top")(func)


def packs_option(func: F) -> F:
    return _setting_option("--packs", setting="packs", multiple=True, metavar="PATH",
                           help="rule pack file or directory (repeatable); default: the configuration's "
                                "`packs`, else the shipped baseline pack")(func)


def engine_option(func: F) -> F:
    return _setting_option("--engine", setting="engine", type=click.Choice(ENGINES),
                           help="CEL engine; default: the configuration's `engine` (auto)")(func)


def budget_option(func: F) -> F:
    return _setting_option("--budget-ms", setting="decision_budget_ms",
                           type=click.FloatRange(min=0, min_open=True),
                           help="time budget of one decision; past it the IR is rejected (BUDGET_EXCEEDED); "
                                "default: the configuration's `decision_budget_ms`")(func)


def algorithm_option(func: F) -> F:
    return _setting_option("--algorithm", setting="hash_algorithm",
                           help="hash backend (sha256, blake3, or a plugin's); default: the configuration's "
                                "`hash_algorithm` (sha256)")(func)


def store_option(func: F) -> F:
    return _setting_option("--store", setting="approval_store", metavar="URL",
                           help="approval store: memory://, sqlite:///relative.db, sqlite:////absolute.db or "
                                "redis://host:port/db; default: the configuration's `approval_store`")(func)


def outbox_option(func: F) -> F:
    return _setting_option("--outbox", setting="outbox", metavar="URL",
                           help="event outbox: sqlite:///relative.db, sqlite:////absolute.db, "
                                "postgresql://host:port/dbname?schema=NAME or memory://; "
                                "default: the configuration's `outbox`")(func)


def key_file_option(func: F) -> F:
    return _setting_option("--key-file", setting="approval_key_file", type=click.Path(dir_okay=False),
                           help="server key file (`kid:base64secret` lines); default: the configuration's key "
                                "(`IRGOV_APPROVAL_KEY`), else the key generated next to a SQLite store")(func)


def format_option(*choices: str, default: str = "text", help: str | None = None) -> Callable[[F], F]:
    """`--format`, passed to the command as `output_format`."""
    return click.option("--format", "output_format", type=click.Choice(list(choices)), default=default,
                        show_default=True, help=help)


def setting_given(setting: str) -> bool:
    """Whether a flag of the running command set `setting`."""
    return setting in click.get_current_context().meta.get(_OVERRIDES, {})


def command_config() -> GovernanceConfig:
    """The configuration of the running command: file, `IRGOV_*`, then its flags. A setting that
    is malformed wherever it came from is a one-line error."""
    ctx = click.get_current_context()
    try:
        return resolve_config(ctx.meta.get(_CONFIG_PATH), **ctx.meta.get(_OVERRIDES, {}))
    except ConfigError as exc:
        fail(str(exc))
