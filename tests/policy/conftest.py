from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.policy import PolicyEngine

REPO = Path(__file__).resolve().parents[2]
BASELINE = REPO / "irgov_policy" / "data" / "baseline.irgov.yaml"  # the one copy, shipped
ENGINES = ["celpy", "cel-cpp"]

_CACHE: dict[str, PolicyEngine] = {}


def baseline_engine(name: str) -> PolicyEngine:
    if name not in _CACHE:
        # A generous budget: under a loaded CI machine the default 250 ms could turn a decision into
        # BUDGET_EXCEEDED on one engine only; the budget itself is tested in test_fail_closed.py.
        _CACHE[name] = PolicyEngine.from_paths([BASELINE], name, use_plugins=False, budget_ms=60_000)
    return _CACHE[name]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> PolicyEngine:
    return baseline_engine(request.param)


BASE_STEP: dict[str, Any] = {
    "step_id": "s0",
    "action": "course.generate_outline",
    "provider": "course_factory.v1",
    "resource": "course/intro",
    "params": {},
    "idempotency_key": "k-0",
}


def make_ir(*steps: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An IR whose steps are BASE_STEP updated with each given dict (None deletes a field)."""
    out_steps = []
    for i, overrides in enumerate(steps or ({},)):
        step = copy.deepcopy(BASE_STEP)
        step["step_id"] = f"s{i}"
        step["idempotency_key"] = f"k-{i}"
        for key, value in overrides.items():
            if value is None and key not in ("idempotency_key", "budget_cents"):
                step.pop(key, None)
            else:
                step[key] = value
        out_steps.append(step)
    return {"tenant_id": "tenant_1", "request_id": "req_1", "steps": out_steps, **fields}


@pytest.fixture
def ir() -> Callable[..., dict[str, Any]]:
    return make_ir


def write_pack(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.irgov.yaml"
    path.write_text(body, encoding="utf-8")
    return path


PACK_HEADER = """apiVersion: irgov.dev/v1
kind: RulePack
metadata:
  name: {name}
  version: "1"
"""


def copy_pack_folder(target: Path) -> Path:
    """A pack folder as a security team keeps one: the baseline pack beside its policy tests
    (and their IR files), the tests pointing at the copy."""
    target.mkdir(parents=True)
    (target / "baseline.irgov.yaml").write_bytes(BASELINE.read_bytes())
    tests = (REPO / "policies" / "baseline.irgov-test.yaml").read_text("utf-8")
    assert "packs: [../irgov_policy/data/baseline.irgov.yaml]" in tests
    (target / "baseline.irgov-test.yaml").write_text(
        tests.replace("packs: [../irgov_policy/data/baseline.irgov.yaml]", "packs: [baseline.irgov.yaml]"), "utf-8")
    import shutil

    shutil.copytree(REPO / "policies" / "baseline-tests", target / "baseline-tests")
    return target


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    return copy_pack_folder(tmp_path / "packs")
