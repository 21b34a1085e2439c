"""The default install brings the C++ CEL engine wherever its wheels exist, `auto` then runs it,
and `irgov check --explain` says which engine decided."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement

from irgov_policy.cli import main
from irgov_policy.policy import PolicyEngine, available_engines

REPO = Path(__file__).resolve().parents[2]


def _cel_cpp_requirement() -> Requirement:
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    [found] = [Requirement(r) for r in project["dependencies"] if r.startswith("cel-expr-python")]
    return found


def test_cel_cpp_is_a_default_dependency_where_its_wheels_exist() -> None:
    requirement = _cel_cpp_requirement()
    assert requirement.marker is not None
    linux = {"platform_python_implementation": "CPython", "python_version": "3.12", "sys_platform": "linux",
             "platform_machine": "x86_64"}
    assert requirement.marker.evaluate(linux)
    assert requirement.marker.evaluate({**linux, "sys_platform": "darwin", "platform_machine": "arm64"})
    assert requirement.marker.evaluate({**linux, "sys_platform": "win32", "platform_machine": "AMD64"})
    assert not requirement.marker.evaluate({**linux, "platform_machine": "riscv64"})
    assert not requirement.marker.evaluate({**linux, "platform_python_implementation": "PyPy"})
    assert not requirement.marker.evaluate({**linux, "python_version": "3.15"})


def test_auto_runs_cel_cpp_where_the_marker_holds() -> None:
    if _cel_cpp_requirement().marker.evaluate():  # type: ignore[union-attr]
        assert available_engines()[0] == "cel-cpp"
        assert PolicyEngine.default().engine_name == "cel-cpp"
    else:
        assert available_engines() == ["celpy"]


def test_check_explain_names_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ir = tmp_path / "ir.json"
    ir.write_text(json.dumps({"tenant_id": "t", "steps": [{"action": "course.create", "provider": "course_factory.v1",
                                                          "resource": "course/x", "idempotency_key": "k"}]}))
    for engine in available_engines():
        result = CliRunner().invoke(main, ["check", str(ir), "--explain", "--engine", engine])
        assert result.exit_code == 0, result.output
        assert f"engine {engine};" in result.output
