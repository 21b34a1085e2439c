from __future__ import annotations

import json

import pytest

from irgov_policy.errors import IRInputError
from irgov_policy.strict_json import loads_strict


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
