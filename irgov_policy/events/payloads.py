"""The shipped JSON Schemas of the events: one per payload type, the envelope, and the two joined
into one schema per event type (the contract a consumer validates whole events against)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from .types import EventType, ExtensionEventType

__all__ = ["event_problems", "event_schema", "payload_problems", "payload_schema"]


@cache
def payload_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of the payload of `event_type` (one of the nine `EventType` values or an
    `ExtensionEventType`)."""
    if event_type not in {t.value for t in ExtensionEventType}:
        EventType(event_type)  # refuses unknown types with a ValueError
    return _read(event_type)


def _read(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        resources.files("irgov_policy.events").joinpath(f"schemas/{name}.json").read_text("utf-8"))
    return schema


@cache
def event_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of a whole `event_type` event: the envelope (`schemas/envelope.json`) with
    its `type` fixed and its `payload` the type's payload schema."""
    schema = copy.deepcopy(_read("envelope"))
    schema["$id"] = schema["$id"].replace("envelope.json", f"{event_type}.event.json")
    schema["title"] = f"the event {event_type}"
    schema["description"] = f"the Charter v1.0 envelope whose payload is that of {event_type}"
    schema["properties"]["type"] = {"const": event_type}
    payload = copy.deepcopy(payload_schema(event_type))
    payload.pop("$schema", None)
    payload.pop("$id", None)
    schema["properties"]["payload"] = payload
    return schema


def _problems(schema: Mapping[str, Any], value: Any) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    return ["/" + "/".join(map(str, e.absolute_path)) + ": " + e.message for e in validator.iter_errors(value)]


def event_problems(event: Mapping[str, Any]) -> list[str]:
    """Every way a whole event (its `to_dict()` form) departs from its type's event schema."""
    event_type = event.get("type")
    if not isinstance(event_type, str):
        return ["/type: an event needs a type"]
    try:
        schema = event_schema(event_type)
    except ValueError:
        return [f"/type: `{event_type}` is not an event type of the contract"]
    return _problems(schema, dict(event))


def payload_problems(event_type: str, payload: Mapping[str, Any]) -> list[str]:
    """Every way `payload` departs from its schema, as `pointer: message` lines (empty when valid)."""
    return _problems(payload_schema(event_type), dict(payload))
