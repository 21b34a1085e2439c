"""Fuzz targets for what reads untrusted input: the strict JSON parser, the IR model and the
problem-document writer. Each holds one property: the input is accepted or refused with an
`IRInputError` (the writer: always renders a JSON problem), never another exception.

The default run is bounded (`IRGOV_FUZZ_EXAMPLES`, 200 examples a target, about 10 s in
all on the CI machine); `IRGOV_FUZZ=long` runs 20,000 examples a target, for a nightly job:

    IRGOV_FUZZ=long python -m pytest tests/fuzz -q
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel.flows import ESCALATE_IR

from irgov_policy.errors import IRInputError
from irgov_policy.hashing import canonical_bytes, ir_hash
from irgov_policy.http import ProblemError
from irgov_policy.http.problems import problem_response
from irgov_policy.model import parse_ir
from irgov_policy.strict_json import loads_strict

EXAMPLES = 20_000 if os.environ.get("IRGOV_FUZZ") == "long" else int(os.environ.get("IRGOV_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Text that reaches every branch: lone surrogates, controls, bidi overrides, token-shaped text.
surrogates = st.integers(0xD800, 0xDFFF).map(chr)
hostile_text = st.lists(st.one_of(st.characters(), surrogates, st.sampled_from(["\x00", "\u202e", "irgap_AbC9"])),
                        max_size=30).map("".join)

# JSON fragments glued together: most documents are nearly valid, so the parser's later checks run.
_FRAGMENTS = ['{', '}', '[', ']', ',', ':', '"a"', '"a"', '"\\ud800"', '"\\udc00\\ud800"', '"\\ud83d\\ude00"',
              '"\\u0000"', '1', '-0', '1e999', '1.5', '9' * 20, '9' * 5000, 'NaN', 'Infinity', 'true', 'null',
              '"\\', ' ', '"irgap_x"', '{"a": 1, "a": 2}', '[' * 70, ']' * 70]
glued = st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("".join)


def _check_parsed(value: Any) -> None:
    # An accepted document can be canonicalised, hashed and rendered: no reader downstream fails.
    canonical_bytes(value)
    json.dumps(value, ensure_ascii=False).encode("utf-8")


@FUZZ
@given(st.one_of(st.binary(max_size=200), glued.map(str.encode), glued))
def test_strict_json_accepts_or_refuses(data: bytes | str) -> None:
    try:
        value = loads_strict(data, max_bytes=100_000, max_depth=64)
    except IRInputError:
        return
    _check_parsed(value)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)),
    max_leaves=20)
_FIELDS = ["tenant_id", "request_id", "created_at", "intent_summary", "labels", "steps"]
_STEP_FIELDS = ["action", "provider", "resource", "params", "idempotency_key", "constraints", "budget_cents",
                "step_id", "risk_tier", "requires_approval"]


@st.composite
def mutated_irs(draw: st.DrawFn) -> Any:
    """A valid IR with a few fields replaced by anything JSON can hold."""
    doc = copy.deepcopy(ESCALATE_IR)
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            doc[draw(st.sampled_from(_FIELDS))] = draw(json_values)
        elif isinstance(doc.get("steps"), list) and doc["steps"] and isinstance(doc["steps"][0], dict):
            doc["steps"][0][draw(st.sampled_from(_STEP_FIELDS))] = draw(json_values)
    return doc


@FUZZ
@given(st.one_of(mutated_irs(), json_values))
def test_the_ir_model_accepts_or_refuses(data: Any) -> None:
    try:
        ir = parse_ir(data)
    except IRInputError:
        return
    ir_hash(ir)
    _check_parsed(ir.to_hashable())


problem_values = st.one_of(hostile_text, st.integers(), st.none(), st.floats())


@FUZZ
@given(status=st.integers(-1000, 1000), kind=hostile_text, detail=hostile_text,
       errors=st.one_of(st.none(), st.lists(st.dictionaries(hostile_text, problem_values, max_size=3), max_size=3)),
       headers=st.dictionaries(hostile_text, hostile_text, max_size=3), instance=st.one_of(st.none(), hostile_text))
def test_the_problem_writer_always_renders(status: int, kind: str, detail: str, errors: Any,
                                          headers: dict[str, str], instance: str | None) -> None:
    response = problem_response(ProblemError(status, kind, detail, errors=errors, headers=headers), instance)
    document = json.loads(bytes(response.body).decode("utf-8"))
    assert 400 <= response.status_code <= 599 and document["status"] == response.status_code
    assert "irgap_" not in json.dumps(document).replace("irgap_<redacted>", "")
