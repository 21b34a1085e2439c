"""libyaml's parser reads packs first; the Python parser reads again whatever it refuses, so its
messages are the ones shown. This holds the two to the same result on every YAML file of the
repository and on generated documents: where the Python parser loads a document, libyaml loads
the same data with the same positions; where it refuses one, libyaml refuses it too (or the fast
path would let through what the reference refuses)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irgov_policy.errors import PackLoadError
from irgov_policy.policy import yaml_strict
from irgov_policy.policy.yaml_strict import load_yaml_strict

pytestmark = pytest.mark.skipif(yaml_strict._FastLoader is None, reason="PyYAML was built without libyaml")

ROOT = Path(__file__).resolve().parents[2]
YAML_FILES = sorted(p for p in ROOT.rglob("*.y*ml") if ".venv" not in p.parts and ".git" not in p.parts
                    and p.suffix in (".yaml", ".yml"))


def _read(text: str, loader: type) -> tuple[object, ...] | str:
    try:
        located = yaml_strict._load(text, "p.irgov.yaml", loader)
    except PackLoadError:
        return "refused"
    return located.data, located.positions, located.key_positions


def _agree(text: str) -> None:
    reference = _read(text, yaml_strict._StrictLoader)
    fast = _read(text, yaml_strict._FastLoader)  # type: ignore[arg-type]
    assert fast == reference, text


def test_the_repository_has_yaml_files_to_compare() -> None:
    assert len(YAML_FILES) >= 5


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_both_parsers_read_every_yaml_file_of_the_repository_alike(path: Path) -> None:
    _agree(path.read_text("utf-8"))


_SCALARS = ["yes", "No", "on", "true", "False", "null", "~", "1", "0x1f", "1_000", ".inf", "2024-01-01",
            "1:30", "word", "héllo wörld", "'quoted'", '"dq \\u00e9"', "!foo x", "!!str 1", "&a x", "*a",
            "|\n    block\n    text\n", ">\n    folded\n    text\n", "a # comment", "[1, 2]", "{k: v}", "",
            "'yes'", "-x", "x: y", "\t", "\x07", "\ufeff", "'unterminated", "{k: v", "- item"]
_KEYS = ["a", "b", "a", "<<", "? complex", "1", "true", "'q'", "héllo", "k k"]


@st.composite
def documents(draw: st.DrawFn) -> str:
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 6))):
        key = draw(st.sampled_from(_KEYS))
        indent = "  " * draw(st.integers(0, 2))
        if draw(st.booleans()):
            lines.append(f"{indent}{key}: {draw(st.sampled_from(_SCALARS))}")
        else:
            lines.append(f"{indent}{key}:")
            for _ in range(draw(st.integers(0, 3))):
                lines.append(f"{indent}  - {draw(st.sampled_from(_SCALARS))}")
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["---", "...", "--- x", "%YAML 1.1", "# end"])))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_both_parsers_agree_on_generated_documents(text: str) -> None:
    _agree(text)


def test_a_refused_document_keeps_the_python_parsers_message() -> None:
    with pytest.raises(PackLoadError) as info:
        load_yaml_strict("created: 2024-01-01\n", "p.irgov.yaml")
    assert [str(p) for p in info.value.problems] == [
        "p.irgov.yaml:1:10: ambiguous value `2024-01-01` (yaml reads it as a timestamp): quote it"]
