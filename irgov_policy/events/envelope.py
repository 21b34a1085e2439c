"""The Charter v1.0 event envelope.

`id`, `type`, `source`, `target`, `timestamp`, `payload`, and `meta` with `schema_version`,
`producer`, `source_module`, `tenant_id` and `correlation_id`. Ids are UUIDv7 so they sort by
time; timestamps are tz-aware UTC written with a trailing `Z`.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..text_rules import redact_tokens, redact_tokens_in
from .types import EventType, is_critical

__all__ = [
    "PRODUCER",
    "SCHEMA_VERSION",
    "Event",
    "format_timestamp",
    "new_event",
    "parse_timestamp",
    "uuid7",
]

SCHEMA_VERSION = "1.0"
PRODUCER = "ir_governance"


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version, 74 random bits, variant."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    value = (ms & ((1 << 48) - 1)) << 80
    value |= int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return uuid.UUID(int=value)


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a trailing `Z`."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are refused: use a tz-aware UTC datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_payload_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC to the whole second with a trailing `Z`, as the event contract writes the
    times inside a payload (`validated_at`, `expires_at`, ...). The envelope's own `timestamp`
    keeps microseconds."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are refused: use a tz-aware UTC datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp `{text}` has no timezone")
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class Event:
    """One governance event. `timestamp` is a tz-aware UTC datetime."""

    id: str
    type: str
    timestamp: datetime
    payload: Mapping[str, Any]
    meta: Mapping[str, Any]
    source: str = PRODUCER
    target: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tenant_id(self) -> str | None:
        value = self.meta.get("tenant_id")
        return value if isinstance(value, str) else None

    @property
    def correlation_id(self) -> str | None:
        value = self.meta.get("correlation_id")
        return value if isinstance(value, str) else None

    @property
    def critical(self) -> bool:
        return is_critical(self.type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "target": self.target,
            "timestamp": format_timestamp(self.timestamp),
            "payload": dict(self.payload),
            "meta": dict(self.meta),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            id=str(data["id"]),
            type=str(data["type"]),
            source=str(data.get("source", PRODUCER)),
            target=data.get("target"),
            timestamp=parse_timestamp(str(data["timestamp"])),
            payload=dict(data.get("payload", {})),
            meta=dict(data.get("meta", {})),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        return cls.from_dict(json.loads(text))


def new_event(
    event_type: EventType | str,
    payload: Mapping[str, Any],
    *,
    tenant_id: str | None,
    correlation_id: str | None = None,
    target: str | None = None,
    now: datetime | None = None,
) -> Event:
    """Build an event with a fresh UUIDv7 id and the Charter v1.0 `meta`."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are refused: use a tz-aware UTC datetime")
    return Event(
        id=str(uuid7(int(moment.timestamp() * 1000))),
        type=str(event_type),
        source=PRODUCER,
        target=None if target is None else redact_tokens(target),
        timestamp=moment.astimezone(UTC),
        # An event is published and kept: a token that reached any of its text never leaves.
        payload=redact_tokens_in(dict(payload)),
        meta={
            "schema_version": SCHEMA_VERSION,
            "producer": PRODUCER,
            "source_module": PRODUCER,
            "tenant_id": None if tenant_id is None else redact_tokens(tenant_id),
            "correlation_id": None if correlation_id is None else redact_tokens(correlation_id),
        },
    )
