"""`irgov hash`: the IR hash and every step hash of an IR."""

from __future__ import annotations

import click

from ..audit import dag_nodes
from ..errors import IrgovError
from ..hashing import default_registry, ir_hash, step_hash
from ..model import load_ir
from ._common import describe_error, echo_json, fail, read_input


@click.command("hash")
@click.argument("ir_file", metavar="IR_FILE|-")
@click.option("--algorithm", default="sha256", show_default=True, help="hash backend (sha256, blake3, or a plugin's)")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--dag", "as_dag", is_flag=True,
              help="print instead the dag an executor running the ir as planned presents (json)")
def hash_command(ir_file: str, algorithm: str, output_format: str, as_dag: bool) -> None:
    """Print the IR hash and the hash of each step, or (--dag) the DAG nodes of the IR."""
    if algorithm not in default_registry():
        fail(f"unknown hash algorithm `{algorithm}`: known are " + ", ".join(f"`{n}`" for n in default_registry().names()))
    try:
        ir = load_ir(read_input(ir_file))
    except IrgovError as exc:
        fail(describe_error(ir_file, exc))
    if as_dag:
        echo_json(dag_nodes(ir, algorithm))
        return
    whole = ir_hash(ir, algorithm)
    steps = [step_hash(s, algorithm) for s in ir.steps]
    if output_format == "json":
        echo_json({"ir_hash": whole, "step_hashes": steps})
        return
    click.echo(f"ir_hash  {whole}")
    for sid, digest in zip(ir.step_ids(), steps, strict=True):
        click.echo(f"step {sid:<8} {digest}")
