"""`irgov schema`: print the shipped JSON Schemas (for editors and other tools)."""

from __future__ import annotations

import click

from ..model import ir_schema
from ..policy import rulepack_schema
from ..policy.policytest import policytest_schema
from ._common import echo_json

__all__ = ["schema_command"]

_SCHEMAS = {"rulepack": rulepack_schema, "ir": ir_schema, "policytest": policytest_schema}


@click.command("schema")
@click.argument("name", type=click.Choice(sorted(_SCHEMAS)))
def schema_command(name: str) -> None:
    """Print the JSON Schema of a rule pack (`rulepack`, draft-07), a policy test file (`policytest`,
    draft-07) or an IR (`ir`)."""
    echo_json(_SCHEMAS[name]())
