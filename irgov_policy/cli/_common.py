"""Shared pieces of the command line: reading inputs, one-line errors, output formats."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from ..errors import IrgovError, IRInputError
from ..strict_json import DEFAULT_MAX_BYTES, read_bounded

__all__ = ["EXIT_ERROR", "EXIT_OK", "OneLineFormatter", "UsageFailure", "echo_json", "fail", "keep_exception_causes",
           "read_input"]

EXIT_OK = 0
EXIT_ERROR = 1


class UsageFailure(click.ClickException):
    """A one-line error printed as `irgov: error: ...` with exit code 1, never a traceback."""

    exit_code = EXIT_ERROR

    def show(self, file: Any = None) -> None:
        click.echo(f"irgov: error: {self.message}", err=True)


class OneLineFormatter(logging.Formatter):
    """`irgov: level: message`. With `causes`, a record's exception (type, message, stack) follows
    it: a server's log must say why it answered 500, a command's output must stay one line."""

    causes = False

    def format(self, record: logging.LogRecord) -> str:
        line = f"irgov: {record.levelname.lower()}: {record.getMessage()}"
        if self.causes and record.exc_info:
            return line + "\n" + self.formatException(record.exc_info)
        return line


def keep_exception_causes() -> None:
    """Log the exception of each record that has one (for `irgov serve`)."""
    for handler in logging.getLogger("irgov_policy").handlers:
        if isinstance(handler.formatter, OneLineFormatter):
            handler.formatter.causes = True


def fail(message: str) -> NoReturn:
    raise UsageFailure(message)


def read_input(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a file, or standard input for `-`, holding at most `max_bytes` + 1 bytes of it (an
    endless input such as `/dev/zero` is refused, not read); errors become one-line failures."""
    try:
        if path == "-":
            return read_bounded(sys.stdin.buffer, max_bytes)
        with Path(path).open("rb") as stream:
            return read_bounded(stream, max_bytes)
    except IRInputError:
        fail(f"`{path}` exceeds the limit of {max_bytes} bytes")
    except OSError as exc:
        fail(f"cannot read `{path}`: {exc.strerror.lower() if exc.strerror else exc}")


def describe_error(where: str, exc: IrgovError) -> str:
    """`where: problem` lines joined with `; `, pointers included for input errors."""
    if isinstance(exc, IRInputError):
        return "; ".join(f"{where}:{p.pointer or '/'}: {p.message}" for p in exc.problems)
    return f"{where}: {exc}"


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False))
