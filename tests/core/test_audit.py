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
    assert not result.success and [(e.node_index, e.node_id) for e in result.extra_dag_nodes] == [(3, "9")]


def test_missing_step_fails() -> None:
    ir = _ir()
    result = audit(ir, _nodes(ir)[:2])
    assert [(m.step_index, m.step_id) for m in result.missing_ir_steps] == [(2, "2")] and not result.success


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
    assert failed.payload["mismatch_details"]["missing_ir_steps"] == [0]
    assert failed.payload["mismatch_details"]["missing_ir_step_ids"] == ["0"]
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


# -- what a node will run, not what it claims --------------------------------------------------

def _content_nodes(ir: IR) -> list[dict[str, Any]]:
    nodes = []
    for sid, s in zip(ir.step_ids(), ir.steps, strict=True):
        nodes.append({"ir_step_id": sid, "ir_step_hash": step_hash(s), **s.to_hashable()})
    return nodes


def test_nodes_carrying_their_content_pass_when_it_is_the_ir_step() -> None:
    ir = _ir()
    result = audit(ir, _content_nodes(ir), require_content=True)
    assert result.success, result.problems()


@pytest.mark.parametrize("field, value", [
    ("action", "infra.destroy"),
    ("resource", "cluster:prod-eu"),
    ("params", {"records": []}),
    ("constraints", {"environment": "production"}),
])
def test_substituted_content_under_the_right_claimed_hash_fails(field: str, value: Any) -> None:
    ir = _ir()
    nodes = _content_nodes(ir)
    nodes[1][field] = value  # the claimed hash is still the IR step's
    result = audit(ir, nodes)
    assert not result.success and not result.hash_mismatches
    [mismatch] = result.content_mismatches
    assert mismatch.node_index == 1 and mismatch.claimed_hash == mismatch.ir_step_hash
    assert mismatch.differing_fields == (field,)
    assert f"`{field}`" in result.problems()[0]


def test_content_that_is_not_a_valid_step_is_malformed() -> None:
    ir = _ir(1)
    nodes = _content_nodes(ir)
    nodes[0]["action"] = 7
    [bad] = audit(ir, nodes).malformed_nodes
    assert bad.reason == "bad_content" and "/action" in bad.detail


def test_a_node_with_only_a_claim_is_refused_when_content_is_required() -> None:
    ir = _ir(2)
    result = audit(ir, _nodes(ir), require_content=True)
    assert [m.reason for m in result.malformed_nodes] == ["missing_content", "missing_content"]
    assert audit(ir, _nodes(ir)).success


def test_unknown_node_fields_are_refused_not_ignored() -> None:
    ir = _ir(1)
    nodes = _nodes(ir)
    nodes[0]["shell"] = "rm -rf /"
    [bad] = audit(ir, nodes).malformed_nodes
    assert bad.reason == "unknown_field" and "`shell`" in bad.detail


def test_known_metadata_is_accepted() -> None:
    ir = _ir(2)
    nodes = _content_nodes(ir)
    nodes[0].update(node_id="n0", name="first", executor="dns", risk_tier=1, requires_approval=False)
    assert audit(ir, nodes).success


# -- order ---------------------------------------------------------------------------------

def test_a_dag_in_reverse_order_fails() -> None:
    ir = _ir(3)
    result = audit(ir, list(reversed(_nodes(ir))))
    assert not result.success
    assert [(o.step_index, o.must_follow_step_index) for o in result.order_violations] == [(1, 0), (2, 1)]
    assert "may run before step `0`" in result.problems()[0]


def test_dependencies_decide_the_order_when_nodes_carry_them() -> None:
    ir = _ir(3)
    nodes = _nodes(ir)
    nodes[1]["depends_on"] = ["0"]
    nodes[2]["depends_on"] = ["1"]
    assert audit(ir, list(reversed(nodes))).success  # list order no longer matters
    nodes[2]["depends_on"] = ["0"]  # 2 may now run beside 1
    [violation] = audit(ir, nodes).order_violations
    assert (violation.step_index, violation.must_follow_step_index) == (2, 1)


def test_independent_steps_may_run_in_any_order_among_themselves() -> None:
    doc = ir_doc(step(resource="zone/a"), step(resource="zone/b", constraints={"independent": True}),
                 step(resource="zone/c"))
    ir = parse_ir(doc)
    assert step_groups_of(ir) == [0, 0, 1]
    nodes = _nodes(ir)
    assert audit(ir, [nodes[1], nodes[0], nodes[2]]).success
    assert not audit(ir, [nodes[0], nodes[2], nodes[1]]).success


def step_groups_of(ir: IR) -> list[int]:
    from irgov_policy.audit import step_groups

    return step_groups(ir.steps)


@pytest.mark.parametrize("deps, reason", [
    ({1: ["missing"]}, "bad_depends_on"),
    ({1: "0"}, "bad_depends_on"),
    ({0: ["1"], 1: ["0"]}, "dependency_cycle"),
])
def test_broken_dependencies_are_malformed(deps: dict[int, Any], reason: str) -> None:
    ir = _ir(2)
    nodes = _nodes(ir)
    for index, value in deps.items():
        nodes[index]["depends_on"] = value
    result = audit(ir, nodes)
    assert not result.success and result.malformed_nodes[0].reason == reason
