"""The CloudEvents mapping, checked against the `cloudevents` SDK."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from irgov_policy.errors import EventError
from irgov_policy.events import EventType, from_cloudevent, new_event, to_cloudevent

from .helpers import SEED_PAYLOADS, seed_event


@pytest.mark.parametrize("event_type", [t.value for t in EventType])
def test_to_cloudevent_is_read_by_the_sdk_with_the_mapped_attributes(event_type: str) -> None:
    event = seed_event(event_type, tenant="tenant_7", correlation="req_7")
    sdk = JSONFormat().read(None, json.dumps(to_cloudevent(event)).encode())
    assert sdk.get_specversion() == "1.0"
    assert sdk.get_id() == event.id and sdk.get_type() == event_type and sdk.get_source() == "ir_governance"
    assert sdk.get_extension("tenantid") == "tenant_7" and sdk.get_extension("correlationid") == "req_7"
    assert sdk.get_time() == event.timestamp
    assert sdk.get_data() == SEED_PAYLOADS[event_type] | {"tenant_id": "tenant_7"}
    assert sdk.get_subject() is None


def test_target_becomes_subject_and_round_trips() -> None:
    event = new_event(EventType.APPROVAL_CREATED, SEED_PAYLOADS[EventType.APPROVAL_CREATED],
                      tenant_id="tenant_123", correlation_id="req_1", target="execution_engine")
    ce = to_cloudevent(event)
    assert ce["subject"] == "execution_engine"
    assert from_cloudevent(ce) == event


def test_an_event_built_by_the_sdk_maps_back_to_the_envelope() -> None:
    attributes = {
        "id": "0190a1b2-0000-7000-8000-000000000001", "source": "ir_governance", "type": "ir.dag_diff_ok",
        "time": datetime(2026, 11, 27, 10, 30, 0, 1, tzinfo=UTC), "subject": "dag-7", "tenantid": "tenant_5",
        "correlationid": "req_5", "schemaversion": "1.0", "datacontenttype": "application/json",
    }
    body = JSONFormat().write(CloudEvent(attributes, dict(SEED_PAYLOADS[EventType.DAG_DIFF_OK])))
    event = from_cloudevent(json.loads(body))
    assert event.id == attributes["id"] and event.type == "ir.dag_diff_ok" and event.target == "dag-7"
    assert event.tenant_id == "tenant_5" and event.correlation_id == "req_5"
    assert event.meta["producer"] == "ir_governance" and event.meta["schema_version"] == "1.0"
    assert event.to_dict()["timestamp"] == "2026-11-27T10:30:00.000001Z"
    assert dict(event.payload) == SEED_PAYLOADS[EventType.DAG_DIFF_OK]


def test_malformed_cloudevents_are_refused_with_a_message() -> None:
    with pytest.raises(EventError, match="lacks required attribute"):
        from_cloudevent({"specversion": "1.0", "id": "x"})  # no source, no type
    with pytest.raises(EventError, match="specversion `0.3`"):
        from_cloudevent({"specversion": "0.3", "id": "x", "source": "s", "type": "t"})
    with pytest.raises(EventError, match="not a json object"):
        from_cloudevent({"specversion": "1.0", "id": "x", "source": "s", "type": "t",
                         "time": "2026-01-01T00:00:00Z", "data": [1]})
    for bad_time in ("yesterday", "2026-01-01T00:00:00"):  # not a timestamp; no timezone
        with pytest.raises(EventError, match=f"`time` `{bad_time}` is not a tz-aware"):
            from_cloudevent({"specversion": "1.0", "id": "x", "source": "s", "type": "t", "time": bad_time})
