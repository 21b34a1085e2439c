from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from irgov_policy.http import create_app
from irgov_policy.kernel import Governance

KEYS = {
    "alice": "alice-submitter-key-0001",
    "bob": "bob-approver-key-000001",
    "root": "root-admin-key-00000001",
    "eve": "eve-other-tenant-key-01",
}
API_KEYS = (
    f"alice:submitter:t1:{KEYS['alice']}",
    f"bob:approver:t1:{KEYS['bob']}",
    f"root:admin:*:{KEYS['root']}",
    f"eve:admin:t2:{KEYS['eve']}",
)


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


def settings(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "approval_store": f"sqlite:///{tmp_path}/state/approvals.db",
        "outbox": f"sqlite:///{tmp_path}/state/outbox.db",
        "api_keys": API_KEYS,
        **overrides,
    }


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    gov = Governance.from_config(environ={}, **settings(tmp_path))
    app = create_app(governance=gov)
    with TestClient(app) as test_client:
        yield test_client
    gov.close()
