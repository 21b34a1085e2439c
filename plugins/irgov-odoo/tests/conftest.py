"""The Odoo plugin's tests use the fixtures irgov_policy offers every plugin author."""

from __future__ import annotations

from pathlib import Path

import pytest

from irgov_policy.policy.cel.base import available_engines

pytest_plugins = ["irgov_policy.testing"]


@pytest.fixture(params=available_engines())
def engine_name(request: pytest.FixtureRequest) -> str:
    """Every CEL engine that can run here: a pack must mean the same on each."""
    name: str = request.param
    return name


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`irgov check` keeps its event outbox under `./.irgov/`: commands the tests run (in this
    process or in a child) start in an empty temporary directory, never in the checkout."""
    workdir = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(workdir)
    return workdir
