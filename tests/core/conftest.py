"""Every core test runs in its own empty working directory: commands such as `irgov diff` keep
their event outbox under `./.irgov/`, and a test must never leave state in the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    workdir = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(workdir)
    for name in ("IRGOV_CONFIG", "IRGOV_OUTBOX", "IRGOV_EVENT_SINKS", "IRGOV_OUTBOX_SOURCES"):
        monkeypatch.delenv(name, raising=False)
    return workdir
