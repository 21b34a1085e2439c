from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irgov_policy import strict_json
from irgov_policy.errors import IRInputError
from irgov_policy.strict_json import loads_strict, read_bounded


def _pointers(exc: IRInputError) -> list[str]:
    return [p.pointer for p in exc.problems]


def test_duplicate_key_is_refused_with_its_pointer() -> None:
    with pytest.raises(IRInputError) as info:
        loads_strict('{"steps": [{"action": "a", "action": "b"}]}')
    assert _pointers(info.value) == ["/steps/0/action"]
    assert "duplicate key `action`" in str(info.value)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_constants_are_refused(constant: str) -> None:
    with pytest.raises(IRInputError, match=f"`{constant}` is not valid JSON"):
        loads_strict(f'{{"x": {constant}}}')


def test_ten_thousand_deep_nesting_is_refused_without_recursion_error() -> None:
    text = "[" * 10_000 + "]" * 10_000
    with pytest.raises(IRInputError, match="nesting deeper than 64 levels"):
        loads_strict(text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert loads_strict(json.dumps({"s": "[" * 500 + '\\"{' * 100})) == {"s": "[" * 500 + '\\"{' * 100}


def test_depth_limit_is_exact() -> None:
    assert loads_strict("[" * 64 + "]" * 64) is not None
    with pytest.raises(IRInputError):
        loads_strict("[" * 65 + "]" * 65)


def test_oversize_document_is_refused_before_parsing() -> None:
    with pytest.raises(IRInputError, match="exceeds the limit of 100 bytes"):
        loads_strict(b"[" + b"1," * 100 + b"1]", max_bytes=100)


def test_unsafe_integer_is_refused_with_pointer() -> None:
    with pytest.raises(IRInputError) as info:
        loads_strict('{"a": {"b": [1, 9007199254740992]}}')
    assert _pointers(info.value) == ["/a/b/1"]
    assert loads_strict('{"a": 9007199254740991}') == {"a": 9007199254740991}


def test_invalid_utf8_and_syntax_are_one_line_errors() -> None:
    with pytest.raises(IRInputError, match="not valid utf-8"):
        loads_strict(b'{"a": "\xff"}')
    with pytest.raises(IRInputError, match="invalid json at line 1"):
        loads_strict('{"a": }')


def test_pointer_escapes_tilde_and_slash() -> None:
    with pytest.raises(IRInputError) as info:
        loads_strict('{"a/b~c": {"k": 1, "k": 2}}')
    assert _pointers(info.value) == ["/a~1b~0c/k"]


def test_a_five_thousand_digit_integer_is_an_input_error() -> None:
    """Beyond Python's int/str conversion limit `json.loads` raises ValueError; here it is refused
    as input, with its pointer and without echoing the digits."""
    with pytest.raises(IRInputError) as info:
        loads_strict('{"a": [' + "7" * 5000 + "]}")
    [problem] = info.value.problems
    assert problem.pointer == "/a/0"
    assert problem.message == "integer of 5000 digits is outside the interoperable range of +/-(2^53 - 1)"
    with pytest.raises(IRInputError, match="integer of 5001 digits"):
        loads_strict(b"-" + b"9" * 5001)


def test_every_unsafe_integer_is_named() -> None:
    with pytest.raises(IRInputError) as info:
        loads_strict('{"a": -9007199254740992, "b": [12345678901234567890], "c": 9007199254740991}')
    assert _pointers(info.value) == ["/a", "/b/0"]


def test_a_number_that_overflows_to_infinity_is_refused() -> None:
    with pytest.raises(IRInputError) as info:
        loads_strict('{"x": {"y": 1e400}}')
    assert [(p.pointer, p.message) for p in info.value.problems] == [
        ("/x/y", "number `1e400` is too large to be a finite double")]


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDFFF", "\\udbff x", "x \\udc00"])
def test_a_lone_surrogate_escape_is_an_input_error(escape: str) -> None:
    with pytest.raises(IRInputError) as info:
        loads_strict('{"steps": [{"resource": "' + escape + '"}]}')
    assert [(p.pointer, p.message) for p in info.value.problems] == [
        ("/steps/0/resource", "string contains a lone utf-16 surrogate")]


def test_a_lone_surrogate_in_a_key_is_an_input_error() -> None:
    with pytest.raises(IRInputError, match="object key contains a lone utf-16 surrogate"):
        loads_strict('{"\\ud800": 1}')


@pytest.mark.parametrize(("document", "pointer"), [
    ('{"\\u0d800\\udc00": null}', "/\u0d800\\udc00"),
    ('{"\u00e9\\ud800": {"x": "\\udc00"}}', "/\u00e9\\ud800"),
])
def test_a_lone_surrogate_in_a_key_beside_other_non_ascii_is_an_input_error(document: str, pointer: str) -> None:
    # Once accepted: naming such a key failed on its other non-ASCII characters, and the
    # document was read as if nothing were wrong.
    with pytest.raises(IRInputError) as info:
        loads_strict(document)
    assert (pointer, "object key contains a lone utf-16 surrogate") in [
        (p.pointer, p.message) for p in info.value.problems]


def test_a_surrogate_pair_escape_is_one_character() -> None:
    assert loads_strict('{"s": "\\ud83d\\ude00", "t": "\\\\ud800"}') == {"s": "\U0001f600", "t": "\\ud800"}


def test_a_text_document_with_a_lone_surrogate_is_an_input_error() -> None:
    with pytest.raises(IRInputError, match="lone utf-16 surrogate at character 7"):
        loads_strict('{"a": "\ud800"}')


def test_depth_counts_objects_and_arrays_together() -> None:
    assert loads_strict('{"a": ' * 32 + "[" * 32 + "]" * 32 + "}" * 32) is not None
    nested = '{"a": ' * 32 + "[" * 33 + "]" * 33 + "}" * 32
    with pytest.raises(IRInputError, match="nesting deeper than 64 levels at offset"):
        loads_strict(nested)
    # Many containers side by side are not deep.
    wide = json.dumps({"steps": [{"params": {"a": [1, {"b": []}]}} for _ in range(200)]})
    assert loads_strict(wide)["steps"][199]["params"]["a"][1] == {"b": []}


def test_read_bounded_reads_at_most_one_byte_more_than_the_limit() -> None:
    class Stream(io.BytesIO):
        asked: list[int] = []

        def read(self, size: int | None = -1) -> bytes:
            self.asked.append(-1 if size is None else size)
            return super().read(size)

    assert read_bounded(Stream(b"x" * 100), 100) == b"x" * 100
    stream = Stream(b"x" * 10_000)
    with pytest.raises(IRInputError, match="document exceeds the limit of 100 bytes"):
        read_bounded(stream, 100)
    assert stream.asked[-1] == 101 and stream.tell() == 101


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_strict_reading_of_valid_json_equals_json_loads(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert loads_strict(text) == json.loads(text)
    assert loads_strict(text.encode("utf-8")) == json.loads(text)


@settings(max_examples=200, deadline=None)
@given(value=st.dictionaries(st.text(max_size=3), json_values, min_size=1, max_size=4), data=st.data())
def test_any_duplicated_key_is_refused(value: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(value)))
    text = json.dumps(value)[:-1] + ", " + json.dumps(key) + ": 0}"
    with pytest.raises(IRInputError, match="duplicate key"):
        loads_strict(text)


# The fast reader (jiter and a walk) against the exact one (json and hooks): same value or same refusal.
def _exact(text: str) -> Any:
    try:
        return ("value", strict_json._exact_read(text, text.encode("utf-8", "surrogatepass"), 64))
    except IRInputError as exc:
        return ("refused", [(p.pointer, p.message) for p in exc.problems])


_edges = st.sampled_from([
    '{"a": 1, "a": 2}', "[NaN]", "[-Infinity]", "[1e400]", "[-1e309]", "[9007199254740992]",
    "[-9007199254740991]", "[12345678901234567890123]", '["\\ud800"]', '{"\\udc00": 1}',
    '["\\ud83d\\ude00"]', "[1.5e-400]", "[-0]", "[-0.0]", "[0.1]", '"x"', "1e999", "12345678901234567",
    "[" * 64 + "]" * 64, "[" * 65 + "]" * 65, "[" * 300 + "]" * 300, '{"a": ' * 64 + "1" + "}" * 64,
    '{"a": ' * 65 + "1" + "}" * 65, '["a\\u0000b"]', "[1,]", "[01]", "\ufeff[1]", '["\t"]', "[1] 2",
])


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(_edges, json_values.map(json.dumps),
                      st.tuples(json_values.map(json.dumps), st.integers(0, 40), st.text(max_size=3)).map(
                          lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:])))
def test_the_fast_reader_agrees_with_the_exact_reader(text: str) -> None:
    if strict_json._jiter is None:
        pytest.skip("jiter is not installed: every document takes the exact reader")
    expected = _exact(text)
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        return  # a str that cannot be encoded is refused before either reader runs
    fast = strict_json._fast_read(encoded, 64)
    if fast is strict_json._UNREAD:
        assert expected[0] == "refused", f"the fast reader refused what the exact one reads: {text!r}"
    else:
        assert expected == ("value", fast)
        assert json.dumps(fast, sort_keys=True) == json.dumps(expected[1], sort_keys=True)
    got = loads_strict(text) if expected[0] == "value" else None
    if expected[0] == "value":
        assert got == expected[1]
    else:
        with pytest.raises(IRInputError) as info:
            loads_strict(text)
        assert [(p.pointer, p.message) for p in info.value.problems] == expected[1]
