"""CloudEvents 1.0 (structured JSON) mapping of the Charter v1.0 envelope.

`tenant_id` -> `tenantid`, `correlation_id` -> `correlationid`, `target` -> `subject`, payload ->
`data`, `meta.schema_version` -> `schemaversion`. Extension names are lowercase alphanumerics, as
the specification requires.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import EventError
from .envelope import PRODUCER, SCHEMA_VERSION, Event, format_timestamp, parse_timestamp

__all__ = ["CLOUDEVENTS_CONTENT_TYPE", "from_cloudevent", "to_cloudevent"]

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"


def to_cloudevent(event: Event) -> dict[str, Any]:
    """The structured-mode CloudEvent of `event`, as a JSON-ready dict."""
    ce: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": format_timestamp(event.timestamp),
        "datacontenttype": "application/json",
        "data": dict(event.payload),
        "schemaversion": str(event.meta.get("schema_version", SCHEMA_VERSION)),
    }
    if event.target is not None:
        ce["subject"] = event.target
    if event.tenant_id is not None:
        ce["tenantid"] = event.tenant_id
    if event.correlation_id is not None:
        ce["correlationid"] = event.correlation_id
    return ce


def from_cloudevent(ce: Mapping[str, Any]) -> Event:
    """The envelope of a structured CloudEvent produced by `to_cloudevent` (or any equivalent)."""
    missing = [k for k in ("specversion", "id", "source", "type") if k not in ce]
    if missing:
        raise EventError(f"cloudevent lacks required attribute(s) {', '.join(f'`{m}`' for m in missing)}")
    if ce["specversion"] != "1.0":
        raise EventError(f"unsupported cloudevents specversion `{ce['specversion']}`")
    if "time" not in ce:
        raise EventError("cloudevent lacks `time`: governance events are always timestamped")
    data = ce.get("data")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise EventError("cloudevent `data` is not a json object")
    try:
        timestamp = parse_timestamp(str(ce["time"]))
    except ValueError:
        raise EventError(f"cloudevent `time` `{ce['time']}` is not a tz-aware RFC 3339 timestamp") from None
    source = str(ce["source"])
    return Event(
        id=str(ce["id"]),
        type=str(ce["type"]),
        source=source,
        target=ce.get("subject"),
        timestamp=timestamp,
        payload=dict(data),
        meta={
            "schema_version": str(ce.get("schemaversion", SCHEMA_VERSION)),
            "producer": PRODUCER if source == PRODUCER else source,
            "source_module": PRODUCER if source == PRODUCER else source,
            "tenant_id": ce.get("tenantid"),
            "correlation_id": ce.get("correlationid"),
        },
    )
