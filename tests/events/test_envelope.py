"""Envelope fidelity: Charter v1.0 fields, UUIDv7 ids, `Z` timestamps, payload schemas."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from irgov_policy.events import CRITICAL_EVENT_TYPES, Event, EventType, new_event, uuid7
from irgov_policy.events.payloads import payload_problems

from .helpers import SEED_PAYLOADS, seed_event

Z_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def test_every_event_type_has_a_seed_payload() -> None:
    assert set(SEED_PAYLOADS) == {t.value for t in EventType}


@pytest.mark.parametrize("event_type", [t.value for t in EventType])
def test_envelope_matches_the_charter_and_payload_its_schema(event_type: str) -> None:
    event = seed_event(event_type, tenant="tenant_9", correlation="req_9")
    data = json.loads(event.to_json())
    assert set(data) == {"id", "type", "source", "target", "timestamp", "payload", "meta"}
    assert data["type"] == event_type and data["source"] == "ir_governance" and data["target"] is None
    assert data["meta"] == {
        "schema_version": "1.0", "producer": "ir_governance", "source_module": "ir_governance",
        "tenant_id": "tenant_9", "correlation_id": "req_9",
    }
    assert Z_TIME.match(data["timestamp"])
    assert uuid.UUID(data["id"]).version == 7
    assert payload_problems(event_type, data["payload"]) == []
    assert Event.from_json(event.to_json()) == event


@pytest.mark.parametrize("event_type", [t.value for t in EventType])
def test_a_payload_missing_a_required_field_is_refused_by_its_schema(event_type: str) -> None:
    payload = dict(SEED_PAYLOADS[event_type])
    del payload["tenant_id"]
    assert any("tenant_id" in p for p in payload_problems(event_type, payload))


def test_critical_types_are_the_five_of_the_issue() -> None:
    assert {str(t) for t in CRITICAL_EVENT_TYPES} == {
        "ir.approval_consumed", "ir.validated_escalate", "ir.validated_reject", "ir.dag_diff_failed",
        "ir.approval_invalid",
    }
    assert seed_event(EventType.DAG_DIFF_FAILED).critical and not seed_event(EventType.DAG_DIFF_OK).critical


def test_uuid7_ids_sort_by_time_and_carry_the_millisecond() -> None:
    base = 1_790_000_000_000
    ids = [uuid7(base + i) for i in range(50)]
    assert ids == sorted(ids, key=lambda u: u.bytes)
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert ids[0].int >> 80 == base


def test_timestamps_are_utc_with_z_and_naive_ones_are_refused() -> None:
    paris = timezone(timedelta(hours=1))
    event = new_event(EventType.DAG_DIFF_OK, {}, tenant_id="t", now=datetime(2026, 1, 2, 4, 0, tzinfo=paris))
    assert event.to_dict()["timestamp"] == "2026-01-02T03:00:00.000000Z"
    assert event.timestamp.tzinfo is not None and event.timestamp.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="naive"):
        new_event(EventType.DAG_DIFF_OK, {}, tenant_id="t", now=datetime(2026, 1, 2))
    assert Event.from_json(event.to_json()).timestamp == datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
