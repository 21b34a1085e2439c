"""`irgov hash`: the IR hash and every step hash of an IR, or the DAG an executor would present."""

from __future__ import annotations

import click

from ..audit import dag_nodes
from ..config import GovernanceConfig
from ..errors import IrgovError
from ..hashing import default_registry, ir_hash, step_hash
from ..kernel.build import build_limits
from ..model import load_ir
from ._common import describe_error, echo_json, fail, read_input
from .options import algorithm_option, command_config, config_option, format_option

__all__ = ["hash_command", "run_hash"]


@click.command("hash")
@click.argument("ir_file", metavar="IR_FILE|-")
@config_option
@algorithm_option
@format_option("text", "json")
@click.option("--dag", "as_dag", is_flag=True,
              help="print instead the dag an executor running the ir as planned presents (json)")
def hash_command(ir_file: str, output_format: str, as_dag: bool) -> None:
    """Print the IR hash and the hash of each step, or (--dag) the DAG nodes of the IR, with the
    configuration's `hash_algorithm` and input limits (the hashes `irgov check` and `irgov serve`
    report)."""
    run_hash(command_config(), ir_file, output_format, as_dag)


def run_hash(config: GovernanceConfig, ir_file: str, output_format: str, as_dag: bool = False) -> None:
    # Any known backend: printing a hash allows nothing, so `allowed_algorithms` does not apply.
    registry = default_registry()
    algorithm = config.hash_algorithm
    if algorithm not in registry:
        fail(f"unknown hash algorithm `{algorithm}`: known are " + ", ".join(f"`{n}`" for n in registry.names()))
    try:
        ir = load_ir(read_input(ir_file, config.max_bytes), limits=build_limits(config))
    except IrgovError as exc:
        fail(describe_error(ir_file, exc))
    if as_dag:
        echo_json(dag_nodes(ir, algorithm, registry=registry))
        return
    whole = ir_hash(ir, algorithm, registry=registry)
    steps = [step_hash(s, algorithm, registry=registry) for s in ir.steps]
    if output_format == "json":
        echo_json({"ir_hash": whole, "step_hashes": steps})
        return
    click.echo(f"ir_hash  {whole}")
    for sid, digest in zip(ir.step_ids(), steps, strict=True):
        click.echo(f"step {sid:<8} {digest}")
