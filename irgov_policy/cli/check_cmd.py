"""`irgov check`: decide on one IR (or a JSON Lines batch of IRs) with rule packs.

Exit codes for one IR: 0 PASS, 3 ESCALATE, 4 REJECT, 1 usage or I/O error. In JSON Lines mode
the exit code is 0 when every line was decided (whatever the decisions), 1 otherwise.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape

from ..errors import PackLoadError, PolicyError
from ..policy import Decision, PolicyEngine, Status
from ._common import fail, read_input
from .events_publish import cli_event_bus

__all__ = ["EXIT_CODES", "check_command"]

EXIT_CODES = {Status.PASS: 0, Status.ESCALATE: 3, Status.REJECT: 4}
_COLOURS = {Status.PASS: "green", Status.ESCALATE: "yellow", Status.REJECT: "red"}


def _build_engine(packs: tuple[str, ...], engine: str) -> PolicyEngine:
    try:
        if packs:
            return PolicyEngine.from_paths(packs, engine)
        return PolicyEngine.default(engine)
    except PackLoadError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        fail(f"{len(exc.problems)} problem(s) in rule packs")
    except PolicyError as exc:
        fail(str(exc))


def _is_jsonl(data: bytes) -> bool:
    """True when the input is not one JSON document but several lines (JSON Lines)."""
    try:
        json.loads(data)
    except json.JSONDecodeError as exc:
        return exc.msg == "Extra data" and len([ln for ln in data.splitlines() if ln.strip()]) > 1
    except (UnicodeDecodeError, RecursionError):
        return False
    return False


def _print_text(console: Console, decision: Decision, explain: bool, label: str | None = None) -> None:
    colour = _COLOURS[decision.status]
    head = f"[{colour}]{decision.status}[/{colour}] tier {decision.risk_tier}"
    if decision.requires_approval:
        head += " (requires approval)"
    head += f"  request {escape(str(decision.request_id))}  {decision.ir_hash}"
    console.print((f"{escape(label)}: " if label else "") + head)
    if explain:
        for step in decision.steps:
            console.print(f"  step {step.index} {escape(step.step_id or '')} {escape(step.action)} via "
                          f"{escape(step.provider)}: tier {step.tier}", markup=True)
            for hit in step.hits:
                audit = " (audit)" if hit.mode == "audit" else ""
                tier = "" if hit.tier is None else f"tier {hit.tier} "
                console.print(f"    - {tier}{escape(hit.reason)} [{escape(str(hit.pack))}/{escape(hit.rule)}]{audit}",
                              markup=False)
    for v in decision.violations:
        where = f"step {v.step_index}" if v.step_index is not None else "ir"
        rule = f" [{v.pack or '-'}/{v.rule or '-'}]" if explain else ""
        audit = " (audit)" if v.mode == "audit" else ""
        console.print(f"  {v.severity} {where}: {v.code}: {v.message}{rule}{audit}", markup=False)
    if explain:
        packs = ", ".join(f"{p['name']}@{p['version']} {p['digest']}" for p in decision.packs)
        console.print(f"  packs: {packs}; engine {decision.engine}; {decision.duration_us} us", markup=False)


def _emit(console: Console, decision: Decision, output_format: str, explain: bool, label: str | None = None) -> None:
    if output_format == "text":
        _print_text(console, decision, explain, label)
    elif output_format == "jsonl":
        click.echo(json.dumps(decision.to_dict(), ensure_ascii=False, separators=(",", ":")))
    else:
        click.echo(json.dumps(decision.to_dict(), ensure_ascii=False, indent=2))


@click.command("check")
@click.argument("ir_file", metavar="[IR.json | -]", default="-", required=False)
@click.option("--packs", "packs", multiple=True, metavar="PATH",
              help="rule pack file or directory (repeatable); default: the shipped baseline pack")
@click.option("--engine", type=click.Choice(["auto", "celpy", "cel-cpp"]), default="auto", show_default=True)
@click.option("--format", "output_format", type=click.Choice(["text", "json", "jsonl"]), default="text",
              show_default=True, help="`jsonl` reads JSON Lines and writes one decision per line")
@click.option("--explain", is_flag=True, help="show every rule hit and violation with its rule")
def check_command(ir_file: str, packs: tuple[str, ...], engine: str, output_format: str, explain: bool) -> None:
    """Decide PASS (exit 0), ESCALATE (3) or REJECT (4) for an IR; 1 on usage or I/O errors."""
    policy = _build_engine(packs, engine)
    data = read_input(ir_file)
    console = Console(highlight=False, soft_wrap=True)
    lines_mode = output_format == "jsonl" or _is_jsonl(data)
    with cli_event_bus() as bus:
        if not lines_mode:
            decision = policy.evaluate(data, bus=bus)
            _emit(console, decision, output_format, explain)
            raise SystemExit(EXIT_CODES[decision.status])
        decided = 0
        lines = [line for line in data.splitlines() if line.strip()]
        for number, line in enumerate(lines, start=1):
            decision = policy.evaluate(line, bus=bus)
            fmt = "jsonl" if output_format != "text" else "text"
            _emit(console, decision, fmt, explain, label=f"line {number}" if fmt == "text" else None)
            decided += 1
    raise SystemExit(0 if decided == len(lines) else 1)


