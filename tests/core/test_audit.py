from __future__ import annotations

from typing import Any

import pytest

from irgov_policy.audit import audit
from irgov_policy.events import EventBus, EventType, MemorySink
from irgov_policy.events.payloads import payload_problems
from irgov_policy.hashing import step_hash
from irgov_policy.model import IR, parse_ir

from .helpers import ir_doc, step


def _ir(n: int = 3, **ids: str) -> IR:
    return parse_ir(ir_doc(*[step(idempotency_key=f"k{i}", resource=f"zone/{i}.example") for i in range(n)]))


def _nodes(ir: IR, algorithm: str = "sha256") -> list[dict[str, Any]]:
    return [{"ir_step_id": sid, "ir_step_hash": step_hash(s, algorithm), "executor": "x"}
            for sid, s in zip(ir.step_ids(), ir.steps, strict=True)]


def test_exact_match_succeeds() -> None:
    ir = _ir()
    result = audit(ir, _nodes(ir))
    assert result.success and result.problems() == []
    assert result.dag_node_count == 3 and result.step_count == 3


def test_blake3_dag_is_audited_with_blake3() -> None:
    ir = _ir()
    assert audit(ir, _nodes(ir, "blake3")).success
    assert not audit(ir, _nodes(ir, "blake3"), allowed_algorithms={"sha256"}).success


def test_extra_dag_node_fails() -> None:
    ir = _ir()
    nodes = _nodes(ir) + [{"ir_step_id": "9", "ir_step_hash": "sha256:" + "0" * 64}]
    result = audit(ir, nodes)
    assert not result.success and result.extra_dag_nodes == ["9"]


def test_missing_step_fails() -> None:
    ir = _ir()
    result = audit(ir, _nodes(ir)[:2])
    assert result.missing_ir_steps == ["2"] and not result.success


def test_hash_mismatch_reports_full_digests() -> None:
    ir = _ir()
    nodes = _nodes(ir)
    nodes[1]["ir_step_hash"] = "sha256:" + "f" * 64
    result = audit(ir, nodes)
    [mismatch] = result.hash_mismatches
    assert mismatch.dag_node_hash == "sha256:" + "f" * 64
    assert mismatch.ir_step_hash == step_hash(ir.steps[1]) and len(mismatch.ir_step_hash) == 71


@pytest.mark.parametrize("wrong_first", [True, False])
def test_duplicate_node_id_fails_whichever_copy_is_wrong(wrong_first: bool) -> None:
    ir = _ir(2)
    good = _nodes(ir)
    wrong = {"ir_step_id": "0", "ir_step_hash": "sha256:" + "e" * 64}
    nodes = [wrong, *good] if wrong_first else [*good, wrong]
    result = audit(ir, nodes)
    assert not result.success
    assert result.duplicate_dag_node_ids == ["0"]
    assert [m.dag_node_hash for m in result.hash_mismatches] == ["sha256:" + "e" * 64]


def test_duplicate_node_with_identical_hash_still_fails() -> None:
    ir = _ir(2)
    nodes = _nodes(ir)
    result = audit(ir, [*nodes, dict(nodes[0])])
    assert result.duplicate_dag_node_ids == ["0"] and not result.success


def test_duplicate_step_ids_fail() -> None:
    ir = parse_ir(ir_doc(step(step_id="a"), step(step_id="a", resource="zone/other")))
    result = audit(ir, _nodes(ir))
    assert result.duplicate_ir_step_ids == ["a"] and not result.success


def test_step_id_equal_to_another_steps_index_is_a_duplicate() -> None:
    ir = parse_ir(ir_doc(step(), step(step_id="0", resource="zone/other")))
    assert ir.step_ids() == ["0", "0"]
    assert audit(ir, _nodes(ir)).duplicate_ir_step_ids == ["0"]


@pytest.mark.parametrize(
    "node, reason",
    [
        ({"ir_step_hash": "sha256:" + "0" * 64}, "missing_id"),
        ({"ir_step_id": "", "ir_step_hash": "sha256:" + "0" * 64}, "empty_id"),
        ({"ir_step_id": 0, "ir_step_hash": "sha256:" + "0" * 64}, "non_string_id"),
        ({"ir_step_id": None, "ir_step_hash": "sha256:" + "0" * 64}, "non_string_id"),
        ({"ir_step_id": "0"}, "missing_hash"),
        ({"ir_step_id": "0", "ir_step_hash": ""}, "empty_hash"),
        ({"ir_step_id": "0", "ir_step_hash": "0" * 64}, "bad_digest"),
        ({"ir_step_id": "0", "ir_step_hash": "md5:" + "0" * 32}, "bad_digest"),
        ({"ir_step_id": "0", "ir_step_hash": 12}, "bad_digest"),
        ("not a node", "not_an_object"),
        ([1, 2], "not_an_object"),
    ],
)
def test_malformed_nodes_are_reported_not_skipped(node: Any, reason: str) -> None:
    ir = _ir(1)
    result = audit(ir, [*_nodes(ir), node])
    assert not result.success
    assert [m.reason for m in result.malformed_nodes] == [reason]


def test_a_dag_that_is_not_a_list_fails_without_raising() -> None:
    ir = _ir(1)
    result = audit(ir, {"nodes": "x"})  # type: ignore[arg-type]
    assert not result.success and result.malformed_nodes[0].reason == "not_a_list"


def test_audit_publishes_ok_and_failed_events_with_contract_payloads() -> None:
    sink = MemorySink()
    bus = EventBus([sink])
    ir = _ir()
    audit(ir, _nodes(ir), bus=bus)
    audit(ir, _nodes(ir)[1:], bus=bus)
    ok, failed = sink.events
    assert ok.type == EventType.DAG_DIFF_OK and failed.type == EventType.DAG_DIFF_FAILED
    assert payload_problems(ok.type, ok.payload) == []
    assert payload_problems(failed.type, failed.payload) == []
    assert failed.payload["mismatch_details"]["missing_ir_steps"] == ["0"]
    assert ok.meta["tenant_id"] == "tenant_123" and ok.meta["correlation_id"] == "req_1"


def test_a_failing_sink_does_not_change_the_audit() -> None:
    class Broken:
        name = "broken"

        def deliver(self, event: object) -> None:
            raise RuntimeError("sink down")

    ir = _ir()
    bus = EventBus([Broken()])
    try:
        assert audit(ir, _nodes(ir), bus=bus).success
    finally:
        bus.close(timeout=1.0)
