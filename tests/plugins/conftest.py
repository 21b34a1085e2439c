"""Plugins installed for real: a distribution's `.dist-info` (metadata and entry points) and its
module in a temporary directory put on `sys.path`, so `importlib.metadata` finds the entry point
exactly as it finds an installed package's. Each test runs in its own working directory, with
the plugin variables cleared and the plugin manager rebuilt."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from irgov_policy.plugins import reset_plugin_manager

Install = Callable[[str, str], Path]


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    for name in ("IRGOV_CONFIG", "IRGOV_OUTBOX", "IRGOV_EVENT_SINKS", "IRGOV_OUTBOX_SOURCES", "IRGOV_PLUGINS",
                 "IRGOV_TRACE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    # Installed provider plugins (the Odoo one) stay out of these tests: only the test's own load.
    monkeypatch.setenv("IRGOV_PLUGINS_BLOCK", "odoo")
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """`install_plugin(entry_point_name, module_source)`: a distribution `irgov-test-NAME` whose
    entry point NAME (group `irgov_policy`) is a module with that source."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    modules: list[str] = []

    def install(name: str, source: str) -> Path:
        module = f"irgov_test_{name}_plugin"
        (root / f"{module}.py").write_text(textwrap.dedent(source), "utf-8")
        info = root / f"irgov_test_{name}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: irgov-test-{name}\nVersion: 0.1\n", "utf-8")
        (info / "entry_points.txt").write_text(f"[irgov_policy]\n{name} = {module}\n", "utf-8")
        modules.append(module)
        reset_plugin_manager()
        return root / f"{module}.py"

    yield install
    for module in modules:
        sys.modules.pop(module, None)
