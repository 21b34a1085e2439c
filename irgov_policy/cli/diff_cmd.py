"""`irgov diff`: audit an executable DAG against its IR."""

from __future__ import annotations

import click
from rich.console import Console

from ..audit import audit
from ..errors import IrgovError
from ..hashing import default_registry
from ..model import load_dag_nodes, load_ir
from ._common import describe_error, echo_json, fail, read_input
from .events_publish import cli_event_bus


@click.command("diff")
@click.argument("ir_file", metavar="IR")
@click.argument("dag_file", metavar="DAG")
@click.option("--algorithm", default="sha256", show_default=True, help="algorithm of the ir and dag hashes")
@click.option("--require-node-content/--no-require-node-content", default=False, show_default=True,
              help="refuse dag nodes that carry only a claimed hash, not the step they will run")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def diff_command(ir_file: str, dag_file: str, algorithm: str, require_node_content: bool,
                 output_format: str) -> None:
    """Check that the DAG executes exactly the IR's steps. Exit 0 when it does, 1 otherwise."""
    if ir_file == "-" and dag_file == "-":
        fail("only one of IR and DAG can be read from standard input")
    if algorithm not in default_registry():
        fail(f"unknown hash algorithm `{algorithm}`")
    try:
        ir = load_ir(read_input(ir_file))
    except IrgovError as exc:
        fail(describe_error(ir_file, exc))
    try:
        nodes = load_dag_nodes(read_input(dag_file))
    except IrgovError as exc:
        fail(describe_error(dag_file, exc))
    with cli_event_bus() as bus:
        result = audit(ir, nodes, algorithm=algorithm, require_content=require_node_content, bus=bus)
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
    raise SystemExit(0 if result.success else 1)
