from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from irgov_policy.events import MemorySink
from irgov_policy.kernel import Governance


def embedded(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "approval_store": f"sqlite:///{tmp_path}/state/approvals.db",
        "outbox": f"sqlite:///{tmp_path}/state/outbox.db",
        **overrides,
    }


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink("test-memory")


@pytest.fixture
def gov(tmp_path: Path, sink: MemorySink) -> Iterator[Governance]:
    governance = Governance.from_config(environ={}, sinks=[sink], **embedded(tmp_path))
    with governance:
        yield governance
