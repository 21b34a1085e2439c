from __future__ import annotations

import pytest

from irgov_policy.errors import PackLoadError
from irgov_policy.policy.yaml_strict import load_yaml_strict


def problems(text: str | bytes, **kw: int) -> list[str]:
    with pytest.raises(PackLoadError) as info:
        load_yaml_strict(text, "p.irgov.yaml", **kw)
    return [str(p) for p in info.value.problems]


def test_duplicate_key_is_refused_at_its_position() -> None:
    assert problems("a: 1\nb:\n  c: 1\n  c: 2\n") == [
        "p.irgov.yaml:4:3: duplicate key `c` (first defined at line 3)"]


def test_anchor_and_alias_are_refused() -> None:
    assert problems("a: &x [1]\nb: *x\n") == [
        "p.irgov.yaml:1:4: anchors (`&x`) are not allowed",
        "p.irgov.yaml:2:4: aliases (`*x`) are not allowed",
    ]


def test_merge_key_is_refused() -> None:
    assert problems("a:\n  <<: {b: 1}\n") == ["p.irgov.yaml:2:3: merge keys (`<<`) are not allowed"]


@pytest.mark.parametrize("word", ["yes", "No", "on", "OFF", "y", "n"])
def test_yaml11_booleans_are_refused(word: str) -> None:
    [message] = problems(f"mode: {word}\n")
    assert message.startswith(f"p.irgov.yaml:1:7: ambiguous value `{word}`")


def test_quoted_yaml11_words_and_core_booleans_load() -> None:
    loaded = load_yaml_strict('a: "yes"\nb: true\nc: off-peak\n', "p.irgov.yaml")
    assert loaded.data == {"a": "yes", "b": True, "c": "off-peak"}


def test_oversize_file_is_refused() -> None:
    assert problems("a: " + "x" * 100 + "\n", max_bytes=50) == [
        "p.irgov.yaml:1:1: file of 104 bytes exceeds the limit of 50"]


def test_python_tags_are_refused() -> None:
    assert problems("a: !!python/name:os.system x\n")[0].startswith("p.irgov.yaml:1:4: unsupported tag")


def test_implicit_dates_are_refused_with_a_hint() -> None:
    assert problems("a: 2024-01-01\nb: !!timestamp 2024-01-01\n") == [
        "p.irgov.yaml:1:4: ambiguous value `2024-01-01` (yaml reads it as a timestamp): quote it",
        "p.irgov.yaml:2:4: unsupported tag `tag:yaml.org,2002:timestamp`"]


def test_control_characters_are_one_located_line() -> None:
    assert problems("a: b\nc: d\x00e\n") == ["p.irgov.yaml:2:5: invalid yaml: unacceptable character #x0000"]
    assert problems(b"\x00") == ["p.irgov.yaml:1:1: invalid yaml: unacceptable character #x0000"]


def test_syntax_error_has_a_location() -> None:
    assert problems("a: [1, 2\nb: 3\n")[0].startswith("p.irgov.yaml:2:")


def test_offset_inside_folded_scalar_maps_to_its_source_line() -> None:
    loaded = load_yaml_strict("when: >-\n  step.a &&\n    step.b\n", "p.irgov.yaml")
    assert loaded.data["when"] == "step.a &&\n  step.b"
    # offset of `step.b` in the folded value -> line 3, column 5
    assert loaded.offset_position(("when",), loaded.data["when"].index("step.b")) == (3, 5)


@pytest.mark.parametrize("text", ["Trueish", "false positives are rare", "true || step.action == \"x\"",
                                  "FALSE-ish", "True North"])
def test_words_starting_with_a_boolean_are_strings(text: str) -> None:
    assert load_yaml_strict(f"a: {text}\n", "p.irgov.yaml").data == {"a": text}
