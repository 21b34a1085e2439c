"""`irgov replay`: decide recorded IRs under a new pack set and the current one; print what changes.

Exit codes: 0 no decision changes, 2 some decision changes, 1 usage, I/O or pack load error.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import PackLoadError, PolicyError
from ..policy import PolicyEngine
from ..policy.replay import ReplayReport, replay_lines
from ..policy.testing_runner import POLICY_TEST_BUDGET_MS
from ._common import fail, read_input

__all__ = ["EXIT_CHANGED", "replay_command"]

EXIT_CHANGED = 2


def _engine(packs: tuple[str, ...], engine: str, budget_ms: float, which: str) -> PolicyEngine:
    try:
        if packs:
            return PolicyEngine.from_paths(packs, engine, budget_ms=budget_ms)
        return PolicyEngine.default(engine, budget_ms=budget_ms)
    except PackLoadError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        fail(f"{len(exc.problems)} problem(s) in the {which} rule packs")
    except PolicyError as exc:
        fail(f"{which} packs: {exc}")


def _print_text(console: Console, report: ReplayReport) -> None:
    for change in report.changes:
        ident = change.request_id if change.request_id is not None else "-"
        console.print(f"line {change.line} request {escape(ident)}: {change.old_status} tier {change.old_tier} -> "
                      f"{change.new_status} tier {change.new_tier}  {escape(' '.join(change.rules) or '-')}",
                      highlight=False)
    table = Table(title=None, show_edge=False)
    table.add_column("current")
    table.add_column("new")
    table.add_column("IRs", justify="right")
    for (old, new), count in sorted(report.transitions.items()):
        table.add_row(old, new, str(count))
    console.print(table)
    console.print(f"{report.decided} IR(s) replayed, {len(report.changes)} decision(s) changed", highlight=False)


@click.command("replay")
@click.argument("irs_file", metavar="IRS.jsonl | -")
@click.option("--packs", "new_packs", multiple=True, required=True, metavar="PATH",
              help="the new rule pack file or directory (repeatable)")
@click.option("--against", "current_packs", multiple=True, metavar="PATH",
              help="the current rule pack file or directory (repeatable); default: what `irgov check` "
                   "uses without `--packs` (the shipped baseline and installed plugins' packs)")
@click.option("--engine", type=click.Choice(["auto", "celpy", "cel-cpp"]), default="auto", show_default=True)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def replay_command(irs_file: str, new_packs: tuple[str, ...], current_packs: tuple[str, ...], engine: str,
                   output_format: str) -> None:
    """Decide every IR of a JSON Lines file (one IR per line; `-` reads standard input) under the
    new and the current pack sets and print the decisions that change: line, request id, old and
    new status and tier, and the rules responsible (`+` fires only under the new set, `-` only
    under the current one), then a table of status transitions. Exit 0 when nothing changes,
    2 when something does."""
    # A generous budget, as in policy tests: a busy machine must not invent a change.
    new = _engine(new_packs, engine, POLICY_TEST_BUDGET_MS, "new")
    current = _engine(current_packs, engine, POLICY_TEST_BUDGET_MS, "current")
    data = read_input(irs_file)
    lines = [(number, line) for number, line in enumerate(data.splitlines(), start=1) if line.strip()]
    if not lines:
        fail(f"no ir in `{irs_file}`: replay expects one ir per line")
    report = replay_lines(lines, current, new)
    if output_format == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_text(Console(highlight=False, soft_wrap=True), report)
    raise SystemExit(EXIT_CHANGED if report.changes else 0)
