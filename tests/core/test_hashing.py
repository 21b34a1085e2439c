from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irgov_policy.errors import DigestError, HashBackendError
from irgov_policy.hashing import (
    HashRegistry,
    Sha256Backend,
    canonical_bytes,
    dag_hash,
    default_registry,
    ir_hash,
    parse_digest,
    step_hash,
    verify_digest,
)
from irgov_policy.model import parse_ir

from .helpers import ir_doc, step

json_scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8) | st.floats(
    # Beyond 2^53 an integral float re-reads as an integer RFC 8785 cannot represent.
    min_value=-(2.0**53) + 1, max_value=2.0**53 - 1, allow_nan=False, allow_infinity=False
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def test_step_hash_is_stable_and_prefixed() -> None:
    ir = parse_ir(ir_doc())
    first = step_hash(ir.steps[0])
    assert first == step_hash(parse_ir(ir_doc()).steps[0])
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 64


def test_hash_changes_when_resource_changes() -> None:
    a = parse_ir(ir_doc(step(resource="zone/example.com")))
    b = parse_ir(ir_doc(step(resource="zone/example.org")))
    assert step_hash(a.steps[0]) != step_hash(b.steps[0])
    assert ir_hash(a) != ir_hash(b)


def test_floats_and_control_characters_hash_instead_of_raising() -> None:
    ir = parse_ir(ir_doc(step(params={"ratio": 0.1, "note": "line\nbreak\x00\u2028", "big": 1e300})))
    assert ir_hash(ir) == ir_hash(parse_ir(ir_doc(step(params={"note": "line\nbreak\x00\u2028", "big": 1e300,
                                                                 "ratio": 0.1}))))


def test_hash_is_stable_after_validation_because_computed_fields_are_ignored() -> None:
    plain = parse_ir(ir_doc())
    with_computed = parse_ir(ir_doc(step(risk_tier=3, requires_approval=True)))
    assert ir_hash(plain) == ir_hash(with_computed)
    assert step_hash(plain.steps[0]) == step_hash(with_computed.steps[0])


def test_backends_give_different_prefixed_digests() -> None:
    ir = parse_ir(ir_doc())
    assert ir_hash(ir, "blake3").startswith("blake3:")
    assert ir_hash(ir, "blake3").split(":")[1] != ir_hash(ir, "sha256").split(":")[1]
    with pytest.raises(HashBackendError, match="unknown hash algorithm `md5`"):
        ir_hash(ir, "md5")


def test_registry_refuses_duplicates_and_bad_names() -> None:
    registry = HashRegistry([Sha256Backend()])
    with pytest.raises(HashBackendError, match="registered twice"):
        registry.register(Sha256Backend())

    class Bad:
        name = "SHA 1"
        digest_size = 20

        def hexdigest(self, data: bytes) -> str:
            return ""

    with pytest.raises(HashBackendError, match="must match"):
        registry.register(Bad())


def test_dag_hash_is_order_independent() -> None:
    pairs = [("b", "sha256:" + "1" * 64), ("a", "sha256:" + "2" * 64)]
    assert dag_hash(pairs) == dag_hash(list(reversed(pairs)))
    assert dag_hash(pairs) != dag_hash([("a", "sha256:" + "1" * 64), ("b", "sha256:" + "2" * 64)])


GOOD = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "variant, message",
    [
        ("ab" * 32, "no algorithm prefix"),
        ("SHA256:" + "ab" * 32, "lower case"),
        ("sha256:" + "AB" * 32, "lower case"),
        (" sha256:" + "ab" * 32, "lower case"),
        ("sha256:" + "ab" * 32 + "\n", "lower case"),
        ("sha256: " + "ab" * 32, "lower case"),
        ("sha256:" + "ab" * 31, "needs 64"),
        ("sha256:" + "ab" * 33, "needs 64"),
        ("md5:" + "ab" * 16, "unknown algorithm `md5`"),
        ("sha1:" + "ab" * 20, "unknown algorithm `sha1`"),
        ("", "no algorithm prefix"),
    ],
)
def test_verify_refuses_malformed_and_downgraded_digests(variant: str, message: str) -> None:
    with pytest.raises(DigestError, match=message):
        verify_digest(variant)


def test_verify_refuses_algorithm_outside_allowed_set() -> None:
    blake = "blake3:" + "cd" * 32
    assert verify_digest(blake).algorithm == "blake3"
    with pytest.raises(DigestError, match="not allowed"):
        verify_digest(blake, allowed={"sha256"})
    assert parse_digest(GOOD).hex == "ab" * 32
    with pytest.raises(DigestError, match="must be a string"):
        verify_digest(None)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_canonicalization_is_key_order_independent_and_survives_a_round_trip(value: dict[str, object]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert canonical_bytes(value) == canonical_bytes(reordered)
    assert canonical_bytes(json.loads(json.dumps(value))) == canonical_bytes(value)
    assert canonical_bytes(json.loads(canonical_bytes(value))) == canonical_bytes(value)


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(["action", "provider", "resource", "idempotency_key"]),
    position=st.integers(min_value=0, max_value=30),
    replacement=st.sampled_from(list(string.ascii_letters + string.digits + "-_./é")),
)
def test_any_single_character_change_changes_the_step_hash(field: str, position: int, replacement: str) -> None:
    original = step()
    text = str(original[field])
    index = position % len(text)
    if text[index] == replacement:
        return
    changed = dict(original)
    changed[field] = text[:index] + replacement + text[index + 1:]
    assert step_hash(parse_ir(ir_doc(original)).steps[0]) != step_hash(parse_ir(ir_doc(changed)).steps[0])


@settings(max_examples=100, deadline=None)
@given(algorithm=st.sampled_from(["sha256", "blake3"]), data=st.binary(max_size=64),
       mutate=st.sampled_from(["upper", "strip_prefix", "truncate", "extend", "space", "rename"]))
def test_verification_rejects_every_variant_of_a_valid_digest(algorithm: str, data: bytes, mutate: str) -> None:
    backend = default_registry().get(algorithm)
    digest = f"{algorithm}:{backend.hexdigest(data)}"
    assert verify_digest(digest).algorithm == algorithm
    variant = {
        "upper": digest.upper(),
        "strip_prefix": digest.split(":", 1)[1],
        "truncate": digest[:-2],
        "extend": digest + "00",
        "space": digest + " ",
        "rename": "sha512:" + digest.split(":", 1)[1],
    }[mutate]
    with pytest.raises(DigestError):
        verify_digest(variant)


any_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6)
mixed_values = st.recursive(
    json_scalars | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(mixed_values)
def test_fast_canonical_path_equals_the_rfc8785_encoder(value: object) -> None:
    import rfc8785

    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_fast_path_corner_cases_equal_rfc8785() -> None:
    import rfc8785

    for value in [{"\U0001f600": 1, "\uffff": 2, "a": [0.5, 1e21, -0.0]}, {"s": "\x00\x1f\x7f\u2028\ud7ff\"\\\\"},
                  {"é": "ü", "e": True, "z": None}, [2**53 - 1, -(2**53) + 1]]:
        assert canonical_bytes(value) == rfc8785.dumps(value)


def test_float_markers_never_capture_user_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import rfc8785

    from irgov_policy import hashing

    nonce = "0" * 32
    lookalike = f"irgov-float-{nonce}-0"
    value = {"ratio": 0.1, "note": lookalike, "other": "irgov-float-" + "f" * 32 + "-0", "n": [1e21, 5e-7]}
    assert canonical_bytes(value) == rfc8785.dumps(value)
    # Even a user string carrying this call's own marker falls back to the exact encoder.
    monkeypatch.setattr(hashing.secrets, "token_hex", lambda n: nonce)
    assert canonical_bytes(value) == rfc8785.dumps(value)
