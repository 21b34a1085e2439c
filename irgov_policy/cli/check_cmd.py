"""`irgov check`: decide on one IR (or a JSON Lines batch of IRs) with rule packs.

Exit codes for one IR: 0 PASS, 3 ESCALATE, 4 REJECT, 1 usage or I/O error. In JSON Lines mode
(`--format jsonl`) the exit code is 0 when every line was decided (whatever the decisions), 1
otherwise. Several IRs given without `--format jsonl` are decided line by line too, but exit with
the code of the worst decision: a gate written for one IR must never pass a file that holds a
REJECT on its third line.
"""

from __future__ import annotations

import json
import re

import click
from rich.console import Console
from rich.markup import escape

from ..config import GovernanceConfig
from ..policy import Decision, Status
from ._common import fail, read_input
from .options import budget_option, command_config, config_option, engine_option, format_option, packs_option
from .wiring import engine_for, event_bus

__all__ = ["EXIT_CODES", "check_command"]

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


def _print_text(console: Console, decision: Decision, explain: bool, label: str | None = None) -> None:
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


def _emit(console: Console, decision: Decision, output_format: str, explain: bool, label: str | None = None) -> None:
    if output_format == "text":
        _print_text(console, decision, explain, label)
    elif output_format == "jsonl":
        click.echo(json.dumps(decision.to_dict(), ensure_ascii=False, separators=(",", ":")))
    else:
        click.echo(json.dumps(decision.to_dict(), ensure_ascii=False, indent=2))


@click.command("check")
@click.argument("ir_file", metavar="[IR.json | -]", default="-", required=False)
@config_option
@packs_option
@engine_option
@format_option("text", "json", "jsonl", help="`jsonl` reads JSON Lines and writes one decision per line")
@click.option("--explain", is_flag=True, help="show every rule hit and violation with its rule")
@budget_option
def check_command(ir_file: str, output_format: str, explain: bool) -> None:
    """Decide PASS (exit 0), ESCALATE (3) or REJECT (4) for an IR; 1 on usage or I/O errors.
    Several IRs, one per line, are decided line by line and exit with the worst decision's code;
    with `--format jsonl` the exit code is 0 once every line is decided.

    The packs, engine, hash algorithm, input limits and budget are the configuration's (`--config`,
    `IRGOV_CONFIG`, `IRGOV_*`), so `irgov check` decides as `irgov serve` does; flags override."""
    raise SystemExit(run_check(command_config(), ir_file, output_format, explain))


def run_check(config: GovernanceConfig, ir_file: str, output_format: str, explain: bool) -> int:
    """Decide on the input with the configuration's engine and print each decision; the exit code."""
    policy = engine_for(config)
    data = read_input(ir_file, config.max_bytes)
    console = Console(highlight=False, soft_wrap=True)
    lines_mode = output_format == "jsonl" or _is_jsonl(data)
    with event_bus(config) as bus:
        if not lines_mode:
            decision = policy.evaluate(data, bus=bus)
            _emit(console, decision, output_format, explain)
            return EXIT_CODES[decision.status]
        lines = _lines(data)
        if not lines:
            fail("no ir in the input: json lines mode expects one ir per line")
        decided = 0
        worst = EXIT_CODES[Status.PASS]
        fmt = "jsonl" if output_format != "text" else "text"
        for number, line in lines:
            decision = policy.evaluate(line, bus=bus)
            _emit(console, decision, fmt, explain, label=f"line {number}" if fmt == "text" else None)
            decided += 1
            worst = max(worst, EXIT_CODES[decision.status])
    if decided != len(lines):
        return 1
    return 0 if output_format == "jsonl" else worst
