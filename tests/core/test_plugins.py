from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from irgov_policy import hookspecs
from irgov_policy.errors import PluginError
from irgov_policy.hashing import default_registry
from irgov_policy.plugins import get_plugin_manager, list_plugins, reset_plugin_manager

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def test_every_hook_is_documented_with_a_heading() -> None:
    hooks = sorted(name for name in dir(hookspecs) if name.startswith("irgov_"))
    headings = set(re.findall(r"^### (irgov_\w+)\s*$", DOCS.read_text("utf-8"), re.MULTILINE))
    assert hooks, "no hooks found"
    missing = [h for h in hooks if h not in headings]
    assert missing == [], f"hooks without a heading in docs/plugins.md: {missing}"
    stale = sorted(headings - set(hooks))
    assert stale == [], f"docs/plugins.md documents hooks that do not exist: {stale}"


def test_builtin_hash_backends_register_through_the_hook() -> None:
    names = default_registry().names()
    assert {"sha256", "blake3"} <= set(names)
    builtin = [p for p in list_plugins() if p.name == "irgov_policy.default_plugins.hash_backends"]
    assert builtin and "irgov_register_hash_backends" in builtin[0].hooks and builtin[0].builtin


@pytest.fixture
def installed_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two real distributions on sys.path: one adds a hash backend, one misspells a hook."""
    for dist, module, body in [
        ("irgov_sample", "irgov_sample_plugin", """
            from irgov_policy.hookspecs import hookimpl

            class Sum8:
                name = "sum8"
                digest_size = 1

                def hexdigest(self, data: bytes) -> str:
                    return format(sum(data) % 256, "02x")

            @hookimpl
            def irgov_register_hash_backends(register):
                register(Sum8())
        """),
        ("irgov_typo", "irgov_typo_plugin", """
            from irgov_policy.hookspecs import hookimpl

            @hookimpl
            def irgov_register_hash_backend(register):
                pass
        """),
    ]:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(body))
        info = tmp_path / f"{dist}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[irgov_policy]\n{dist} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_plugin_manager()
    yield tmp_path
    for module in ("irgov_sample_plugin", "irgov_typo_plugin"):
        sys.modules.pop(module, None)
    monkeypatch.undo()
    reset_plugin_manager()


def test_misspelt_hook_fails_loudly(installed_plugins: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IRGOV_PLUGINS", raising=False)
    monkeypatch.delenv("IRGOV_PLUGINS_BLOCK", raising=False)
    with pytest.raises(PluginError, match="irgov_register_hash_backend"):
        get_plugin_manager()


def test_block_list_skips_a_plugin(installed_plugins: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRGOV_PLUGINS_BLOCK", "irgov_typo")
    assert "sum8" in default_registry()
    names = [p.name for p in list_plugins()]
    assert "irgov_sample" in names and "irgov_typo" not in names


def test_allow_list_loads_only_named_plugins(installed_plugins: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRGOV_PLUGINS", "irgov_sample")
    names = [p.name for p in list_plugins()]
    assert "irgov_sample" in names and "irgov_typo" not in names
    monkeypatch.setenv("IRGOV_PLUGINS", "nothing_else")
    reset_plugin_manager()
    assert "sum8" not in default_registry()
    assert "sha256" in default_registry()
