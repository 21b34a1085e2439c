"""`irgov schema`: print the shipped JSON Schemas (for editors and other tools)."""

from __future__ import annotations

import click

from ..events.payloads import event_schema
from ..events.types import EventType, ExtensionEventType
from ..model import ir_schema
from ..policy import rulepack_schema
from ..policy.policytest import policytest_schema
from ._common import echo_json

__all__ = ["schema_command"]

_SCHEMAS = {"rulepack": rulepack_schema, "ir": ir_schema, "policytest": policytest_schema}
_EVENTS = [t.value for t in EventType] + [t.value for t in ExtensionEventType]


@click.command("schema")
@click.argument("name", type=click.Choice(sorted(_SCHEMAS) + _EVENTS))
def schema_command(name: str) -> None:
    """Print the JSON Schema of a rule pack (`rulepack`, draft-07), a policy test file (`policytest`,
    draft-07), an IR (`ir`), or a whole event of one type (`ir.approval_created`, ...: the
    envelope with that type's payload, every object closed; docs/events.md)."""
    echo_json(_SCHEMAS[name]() if name in _SCHEMAS else event_schema(name))
