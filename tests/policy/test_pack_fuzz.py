"""Every pack input ends in a clean load or in located errors, never in a traceback.

The scalars are drawn from what YAML resolves implicitly (booleans and their prefixes, YAML 1.1
words, numbers, dates, nulls, infinities) glued to ordinary words, so that a resolver pattern
that matches a prefix only (`Trueish`) is found in any slot of a pack."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irgov_policy.errors import PackLoadError
from irgov_policy.policy import RulePack, lint_paths, parse_pack

from .conftest import ENGINES, PACK_HEADER, write_pack

_IMPLICIT = ["true", "True", "TRUE", "false", "False", "FALSE", "yes", "No", "on", "OFF", "y", "n",
             "null", "Null", "~", "1", "-2", "0x1f", "0o7", "1_000", "3.0", ".inf", "-.Inf", ".nan",
             "2024-01-01", "2024-01-01 10:00:00", "1:30", "0b101", "+1"]
_GLUE = ["", " ", "ish", " positives are rare", " || step.action == \"x\"", " && true", "-x", ":", " #c",
         "e5", "0", "_"]

scalars = st.builds(lambda a, b, c: a + b + c, st.sampled_from(_IMPLICIT + ["word", ""]), st.sampled_from(_GLUE),
                    st.sampled_from(_IMPLICIT + [""]))

_TEMPLATE = PACK_HEADER.format(name="fuzz") + """  description: {0}
vocabularies:
  actions: [course.generate_outline, {1}]
constants:
  names: [{2}]
rules:
  - id: r1
    description: {3}
    when: {4}
    tier: 2
    reason: {5}
  - id: r2
    when: step.action == "course.generate_outline"
    violation: {{code: C, message: {6}}}
"""


def _assert_located(error: PackLoadError) -> None:
    assert error.problems
    for problem in error.problems:
        assert problem.line >= 1 and problem.column >= 1
        assert problem.message and "\n" not in problem.message


def _load(text: str | bytes) -> RulePack | None:
    try:
        return parse_pack(text, "fuzz.irgov.yaml")
    except PackLoadError as error:
        _assert_located(error)
        return None


@settings(max_examples=300, deadline=None)
@given(st.lists(scalars, min_size=7, max_size=7))
def test_any_scalar_in_any_slot_loads_or_is_located(values: list[str]) -> None:
    _load(_TEMPLATE.format(*values))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(scalars, min_size=7, max_size=7))
def test_lint_on_every_engine_never_raises(tmp_path: Path, values: list[str]) -> None:
    path = write_pack(tmp_path, "fuzz", _TEMPLATE.format(*values))
    report = lint_paths([path], engines=ENGINES, baseline_vocabulary=False)
    for problem in report.problems:
        assert problem.line >= 1 and problem.column >= 1


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_arbitrary_text_loads_or_is_located(text: str | bytes) -> None:
    _load(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a:", " b", "\n", "  - ", "[", "]", "{", "}", "&x ", "*x", "<<: ", "!!str ",
                                 "? ", "|", ">", "'", '"', "#", "---\n", "...\n", "\t", ", "] + _IMPLICIT),
                max_size=40).map("".join))
def test_yaml_shaped_text_loads_or_is_located(text: str) -> None:
    _load(text)
