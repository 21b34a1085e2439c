"""`irgov check`: decide on one IR (or a JSON Lines batch of IRs) with rule packs.

Exit codes for one IR: 0 PASS, 3 ESCALATE, 4 REJECT, 1 usage or I/O error. In JSON Lines mode
(`--format jsonl`) the exit code is 0 when every line was decided (whatever the decisions), 1
otherwise. Several IRs given without `--format jsonl` are decided line by line too, but exit with
the code of the worst decision: a gate written for one IR must never pass a file that holds a
REJECT on its third line.

A check is side-effect free by default: it writes no file and publishes no event (a what-if run
must not reach the sinks of production). Events are on when an outbox or sinks are configured:
`--outbox URL`, `IRGOV_OUTBOX`, `IRGOV_EVENT_SINKS`, or `outbox` / `event_sinks` in the
configuration file; `--no-events` turns them off whatever the configuration says. With events on,
a batch is decided in chunks: a chunk's events are committed (one synchronous commit for its
critical ones) before its lines are printed.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ..config import GovernanceConfig
from ..events import EventBus
from ..policy import Decision, PolicyEngine, Status
from ._common import fail, read_input
from .options import (
    budget_option,
    command_config,
    config_option,
    engine_option,
    format_option,
    outbox_option,
    packs_option,
    setting_given,
)
from .wiring import engine_for, event_bus

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["CHUNK_LINES", "EXIT_CODES", "check_command", "events_configured"]

#: Lines decided between two commits of their events (and two writes of their output).
CHUNK_LINES = 256

EXIT_CODES = {Status.PASS: 0, Status.ESCALATE: 3, Status.REJECT: 4}
_COLOURS = {Status.PASS: "green", Status.ESCALATE: "yellow", Status.REJECT: "red"}


def _lines(data: bytes) -> list[tuple[int, bytes]]:
    """The non-blank lines of the input with their 1-based line numbers."""
    return [(number, line) for number, line in enumerate(data.splitlines(), start=1) if line.strip()]


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def _is_jsonl(data: bytes) -> bool:
    """True when the input is not one JSON document but several lines (JSON Lines): the first
    line is a whole document followed by more, or (a batch whose first line is broken) most lines
    are whole documents on their own, which the lines of a broken pretty-printed document are not."""
    try:
        json.loads(data)
    except json.JSONDecodeError as exc:
        lines = _lines(data)
        if len(lines) < 2:
            return False
        if exc.msg == "Extra data":
            return True
        return 2 * sum(1 for _, line in lines if _parses(line)) > len(lines)
    except (ValueError, RecursionError):  # not UTF-8, or nested past the parser's recursion
        return False
    return False


# Control characters (ANSI escapes move the cursor and erase lines) and bidirectional overrides
# in an IR would otherwise reach the terminal and could make a REJECT read as a PASS.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _safe(text: str) -> str:
    """`text` with every control and bidirectional-override character shown as its `\\u` escape
    (four hex digits), so an IR cannot rewrite the terminal that shows its decision."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _console() -> Console:
    # rich is imported for text output only: a JSON Lines batch starts without it.
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _print_text(console: Console | None, decision: Decision, explain: bool, label: str | None = None) -> None:
    from rich.markup import escape

    assert console is not None  # text output always has one

    def line(text: str, markup: bool = False) -> None:
        console.print(_safe(text), markup=markup)

    colour = _COLOURS[decision.status]
    head = f"[{colour}]{decision.status}[/{colour}] tier {decision.risk_tier}"
    if decision.requires_approval:
        head += " (requires approval)"
    head += f"  tenant {escape(decision.tenant_id or '-')}  request {escape(decision.request_id or '-')}  {decision.ir_hash}"
    line((f"{escape(label)}: " if label else "") + head, markup=True)
    if explain:
        for step in decision.steps:
            line(f"  step {step.index} {step.step_id or ''} {step.action} via {step.provider}: tier {step.tier}")
            for hit in step.hits:
                audit = " (audit)" if hit.mode == "audit" else ""
                tier = "" if hit.tier is None else f"tier {hit.tier} "
                line(f"    - {tier}{hit.reason} [{hit.pack}/{hit.rule}]{audit}")
    for v in decision.violations:
        where = f"step {v.step_index}" if v.step_index is not None else "ir"
        rule = f" [{v.pack or '-'}/{v.rule or '-'}]" if explain else ""
        audit = " (audit)" if v.mode == "audit" else ""
        line(f"  {v.severity} {where}: {v.code}: {v.message}{rule}{audit}")
    if explain:
        for note in decision.notes:
            line(f"  note: {note}")
        packs = ", ".join(f"{p['name']}@{p['version']} {p['digest']}" for p in decision.packs)
        line(f"  packs: {packs}; engine {decision.engine}; {decision.duration_us} us")


def _emit(console: Console | None, decision: Decision, output_format: str, explain: bool, label: str | None = None) -> None:
    if output_format == "text":
        _print_text(console, decision, explain, label)
    elif output_format == "jsonl":
        click.echo(_jsonl(decision))
    else:
        click.echo(json.dumps(decision.to_dict(), ensure_ascii=False, indent=2))


def _jsonl(decision: Decision) -> str:
    return json.dumps(decision.to_dict(), ensure_ascii=False, separators=(",", ":"))


def events_configured(config: GovernanceConfig, *, outbox_flag: bool = False, no_events: bool = False,
                      environ: dict[str, str] | None = None) -> bool:
    """Whether a check publishes events: an outbox given by `--outbox`, `IRGOV_OUTBOX` or the
    configuration file (any address but the embedded default), or sinks configured; never with
    `--no-events`."""
    if no_events:
        return False
    env = os.environ if environ is None else environ
    return (outbox_flag or bool(config.event_sinks) or bool(env.get("IRGOV_OUTBOX", "").strip())
            or config.outbox != GovernanceConfig.outbox)


@contextmanager
def _check_bus(config: GovernanceConfig, enabled: bool) -> Iterator[EventBus | None]:
    if not enabled:
        yield None
        return
    with event_bus(config) as bus:
        yield bus


@click.command("check")
@click.argument("ir_file", metavar="[IR.json | -]", default="-", required=False)
@config_option
@packs_option
@engine_option
@format_option("text", "json", "jsonl", help="`jsonl` reads JSON Lines and writes one decision per line")
@click.option("--explain", is_flag=True, help="show every rule hit and violation with its rule")
@budget_option
@outbox_option
@click.option("--no-events", is_flag=True,
              help="publish no event and write no file, whatever outbox or sinks the configuration names "
                   "(a what-if run against a production configuration)")
def check_command(ir_file: str, output_format: str, explain: bool, no_events: bool) -> None:
    """Decide PASS (exit 0), ESCALATE (3) or REJECT (4) for an IR; 1 on usage or I/O errors.
    Several IRs, one per line, are decided line by line and exit with the worst decision's code;
    with `--format jsonl` the exit code is 0 once every line is decided.

    The packs, engine, hash algorithm, input limits and budget are the configuration's (`--config`,
    `IRGOV_CONFIG`, `IRGOV_*`), so `irgov check` decides as `irgov serve` does; flags override.
    It writes no file and publishes no event unless an outbox or sinks are configured (`--outbox`,
    `IRGOV_OUTBOX`, `IRGOV_EVENT_SINKS` or the configuration file); `--no-events` keeps it so."""
    config = command_config()
    events = events_configured(config, outbox_flag=setting_given("outbox"), no_events=no_events)
    raise SystemExit(run_check(config, ir_file, output_format, explain, events=events))


def run_check(config: GovernanceConfig, ir_file: str, output_format: str, explain: bool, *,
              events: bool = False) -> int:
    """Decide on the input with the configuration's engine and print each decision; the exit code.
    With `events`, decisions are published on the configured bus."""
    policy = engine_for(config)
    data = read_input(ir_file, config.max_bytes)
    console = _console() if output_format == "text" else None
    lines_mode = output_format == "jsonl" or _is_jsonl(data)
    with _check_bus(config, events) as bus:
        if not lines_mode:
            decision = policy.evaluate(data, bus=bus)
            _emit(console, decision, output_format, explain)
            return EXIT_CODES[decision.status]
        lines = _lines(data)
        if not lines:
            fail("no ir in the input: json lines mode expects one ir per line")
        fmt = "jsonl" if output_format != "text" else "text"
        decided, worst, committed = _check_lines(policy, bus, lines, console, fmt, explain)
    if decided != len(lines) or not committed:
        return 1
    return 0 if output_format == "jsonl" else worst


def _check_lines(policy: PolicyEngine, bus: EventBus | None, lines: list[tuple[int, bytes]],
                 console: Console | None, fmt: str, explain: bool) -> tuple[int, int, bool]:
    """Decide `lines` chunk by chunk; a chunk is printed once its events are committed. Returns
    the lines decided, the worst exit code and whether every event was committed."""
    decided = 0
    worst = EXIT_CODES[Status.PASS]
    committed = True
    for start in range(0, len(lines), CHUNK_LINES):
        chunk = lines[start:start + CHUNK_LINES]
        decisions: list[Decision] = []
        if bus is None:
            decisions = [policy.evaluate(line) for _, line in chunk]
        else:
            with bus.batch() as batch:
                decisions = [policy.evaluate(line, bus=bus) for _, line in chunk]
            if not batch.durable:
                committed = False
                click.echo(f"irgov: error: the events of lines {chunk[0][0]}-{chunk[-1][0]} could not all be "
                           f"committed to the outbox `{bus.outbox.url}`", err=True)
        if fmt == "jsonl":
            sys.stdout.write("".join(_jsonl(d) + "\n" for d in decisions))
            sys.stdout.flush()
        else:
            for (number, _), decision in zip(chunk, decisions, strict=True):
                _print_text(console, decision, explain, label=f"line {number}")
        for decision in decisions:
            decided += 1
            worst = max(worst, EXIT_CODES[decision.status])
    return decided, worst, committed
