"""OpenTelemetry spans around validate, audit and consume, seen by the SDK's in-memory exporter."""

from __future__ import annotations

from pathlib import Path

import pytest

from irgov_policy.kernel import Governance

from .flows import ESCALATE_IR, dag_for

trace = pytest.importorskip("opentelemetry.trace", reason="opentelemetry-api is not installed")
sdk_trace = pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installed")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk_trace.TracerProvider):
        provider = sdk_trace.TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:  # pragma: no cover - another test set one first
        pytest.skip("a tracer provider of another test is installed")
    _EXPORTER.clear()
    return _EXPORTER


def test_the_gate_traces_validate_audit_and_consume(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    with Governance.from_config(environ={}, approval_store=f"sqlite:///{tmp_path}/a.db",
                                outbox=f"sqlite:///{tmp_path}/o.db") as gov:
        decision = gov.validate(ESCALATE_IR, submitted_by="alice")
        request = gov.request_approval(decision, "alice")
        token = gov.grant(request.request.request_id, "bob", "t1").token
        assert gov.authorize_execution(ESCALATE_IR, dag_for(ESCALATE_IR), token, executed_by="alice").allowed
        assert not gov.consume(token, tenant_id="t1", ir_hash=decision.ir_hash).success
    finished = spans.get_finished_spans()
    names = [s.name for s in finished]
    assert names.count("irgov.validate") == 2 and names.count("irgov.audit") == 1
    assert names.count("irgov.consume") == 2
    validate = next(s for s in finished if s.name == "irgov.validate")
    assert validate.attributes is not None and validate.attributes["irgov.status"] == "ESCALATE"
    assert validate.attributes["irgov.ir_hash"] == decision.ir_hash
    consumes = [s.attributes for s in finished if s.name == "irgov.consume"]
    assert [a["irgov.success"] for a in consumes if a] == [True, False]
    assert consumes[1] is not None and consumes[1]["irgov.reason"] == "already_consumed"
    audit = next(s for s in finished if s.name == "irgov.audit")
    assert audit.attributes is not None and audit.attributes["irgov.success"] is True
