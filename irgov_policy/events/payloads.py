"""The shipped JSON Schema of each event payload, and validation against it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from .types import EventType, ExtensionEventType

__all__ = ["payload_problems", "payload_schema"]


@cache
def payload_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of the payload of `event_type` (one of the nine `EventType` values or an
    `ExtensionEventType`)."""
    if event_type not in {t.value for t in ExtensionEventType}:
        EventType(event_type)  # refuses unknown types with a ValueError
    text = resources.files("irgov_policy.events").joinpath(f"schemas/{event_type}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def payload_problems(event_type: str, payload: Mapping[str, Any]) -> list[str]:
    """Every way `payload` departs from its schema, as `pointer: message` lines (empty when valid)."""
    schema = payload_schema(event_type)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        "/" + "/".join(map(str, e.absolute_path)) + ": " + e.message
        for e in validator.iter_errors(dict(payload))
    ]
