"""`irgov diff`: audit an executable DAG against its IR."""

from __future__ import annotations

import click
from rich.console import Console

from ..audit import audit
from ..config import GovernanceConfig
from ..errors import IrgovError
from ..kernel.build import build_limits
from ..model import load_dag_nodes, load_ir
from ._common import describe_error, echo_json, fail, read_input
from .options import algorithm_option, command_config, config_option, format_option
from .wiring import event_bus, registry_for

__all__ = ["diff_command", "run_diff"]


@click.command("diff")
@click.argument("ir_file", metavar="IR")
@click.argument("dag_file", metavar="DAG")
@config_option
@algorithm_option
@click.option("--require-node-content/--no-require-node-content", default=False, show_default=True,
              help="refuse dag nodes that carry only a claimed hash, not the step they will run "
                   "(as `POST /diff-audit` does with `require_node_content`; the gate always follows "
                   "the configuration's `require_node_content`)")
@format_option("text", "json")
def diff_command(ir_file: str, dag_file: str, require_node_content: bool, output_format: str) -> None:
    """Check that the DAG executes exactly the IR's steps. Exit 0 when it does, 1 otherwise.
    The ir and dag hashes use the configuration's `hash_algorithm`; a node's digest must use one
    of `allowed_algorithms`."""
    if ir_file == "-" and dag_file == "-":
        fail("only one of IR and DAG can be read from standard input")
    raise SystemExit(run_diff(command_config(), ir_file, dag_file, output_format, require_node_content))


def run_diff(config: GovernanceConfig, ir_file: str, dag_file: str, output_format: str,
             require_content: bool = False) -> int:
    registry = registry_for(config)
    limits = build_limits(config)
    try:
        ir = load_ir(read_input(ir_file, config.max_bytes), limits=limits)
    except IrgovError as exc:
        fail(describe_error(ir_file, exc))
    try:
        nodes = load_dag_nodes(read_input(dag_file, config.max_bytes), limits=limits)
    except IrgovError as exc:
        fail(describe_error(dag_file, exc))
    with event_bus(config) as bus:
        result = audit(ir, nodes, algorithm=config.hash_algorithm, allowed_algorithms=config.allowed_algorithms,
                       require_content=require_content, registry=registry, bus=bus)
    if output_format == "json":
        echo_json(result.to_dict())
    else:
        console = Console(highlight=False)
        if result.success:
            console.print(f"[green]ok[/green]: {result.dag_node_count} dag nodes match {result.step_count} ir steps")
            console.print(f"ir_hash  {result.ir_hash}\ndag_hash {result.dag_hash}")
        else:
            console.print(f"[red]failed[/red]: {len(result.problems())} problem(s)")
            for line in result.problems():
                console.print(f"  - {line}", markup=False)
    return 0 if result.success else 1
