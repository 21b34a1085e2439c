"""Finding: state files were world-readable. `approvals.db` (with the ledger tables), `outbox.db`
and their WAL and SHM files were created 0644 although the operator checklist says 0600. Every
state file and folder the kernel creates is now owner-only, whatever the umask allows."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel.flows import ESCALATE_IR

from irgov_policy.kernel import Governance


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _modes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): oct(stat.S_IMODE(p.stat().st_mode)) for p in sorted(root.rglob("*"))}


def test_every_state_file_and_folder_is_owner_only(tmp_path: Path, permissive_umask: None) -> None:
    state = tmp_path / "var" / "irgov"
    gov = Governance.from_config(environ={}, approval_store=f"sqlite:///{state}/approvals.db",
                                 outbox=f"sqlite:///{state}/events/outbox.db")
    try:
        decision = gov.validate(ESCALATE_IR, submitted_by="alice")
        view = gov.request_approval(decision.ir_hash, "alice", tenant_id="t1", reason="a change")
        gov.grant(view.request.request_id, "bob", "t1")
        gov.bus.flush(5)
        modes = _modes(tmp_path / "var")
        files = {name for name in modes if (tmp_path / "var" / name).is_file()}
    finally:
        gov.close()
    assert {"irgov/approvals.db", "irgov/approvals.db-wal", "irgov/approval.key",
            "irgov/events/outbox.db", "irgov/events/outbox.db-wal"} <= files, modes
    for name, mode in modes.items():
        expected = "0o600" if name in files else "0o700"
        assert mode == expected, (name, modes)


def test_an_existing_file_keeps_the_mode_its_operator_chose(tmp_path: Path, permissive_umask: None) -> None:
    (tmp_path / "approvals.db").touch(mode=0o640)
    os.chmod(tmp_path / "approvals.db", 0o640)
    gov = Governance.from_config(environ={}, approval_store=f"sqlite:///{tmp_path}/approvals.db",
                                 outbox=f"sqlite:///{tmp_path}/outbox.db")
    gov.close()
    assert oct(stat.S_IMODE((tmp_path / "approvals.db").stat().st_mode)) == "0o640"
    assert oct(stat.S_IMODE((tmp_path / "outbox.db").stat().st_mode)) == "0o600"
