"""Shared pieces of the command line: reading inputs, one-line errors, output formats."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from ..errors import IrgovError, IRInputError

__all__ = ["EXIT_ERROR", "EXIT_OK", "UsageFailure", "echo_json", "fail", "read_input"]

EXIT_OK = 0
EXIT_ERROR = 1


class UsageFailure(click.ClickException):
    """A one-line error printed as `irgov: error: ...` with exit code 1, never a traceback."""

    exit_code = EXIT_ERROR

    def show(self, file: Any = None) -> None:
        click.echo(f"irgov: error: {self.message}", err=True)


def fail(message: str) -> NoReturn:
    raise UsageFailure(message)


def read_input(path: str) -> bytes:
    """Read a file, or standard input for `-`; I/O errors become one-line failures."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        fail(f"cannot read `{path}`: {exc.strerror.lower() if exc.strerror else exc}")


def describe_error(where: str, exc: IrgovError) -> str:
    """`where: problem` lines joined with `; `, pointers included for input errors."""
    if isinstance(exc, IRInputError):
        return "; ".join(f"{where}:{p.pointer or '/'}: {p.message}" for p in exc.problems)
    return f"{where}: {exc}"


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False))
