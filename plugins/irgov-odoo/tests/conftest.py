"""The Odoo plugin's tests use the fixtures irgov_policy offers every plugin author."""

from __future__ import annotations

import pytest

from irgov_policy.policy.cel.base import available_engines

pytest_plugins = ["irgov_policy.testing"]


@pytest.fixture(params=available_engines())
def engine_name(request: pytest.FixtureRequest) -> str:
    """Every CEL engine that can run here: a pack must mean the same on each."""
    name: str = request.param
    return name
