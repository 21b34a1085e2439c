from __future__ import annotations

import ast
import inspect
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


def _section(page: str, heading: str) -> str:
    match = re.search(rf"^### {heading}\s*$(.*?)(?=^##)", page, re.MULTILINE | re.DOTALL)
    assert match, f"no section `### {heading}` in docs/plugins.md"
    return match.group(1)


def test_each_hook_section_shows_the_hooks_signature() -> None:
    """Arguments, their types and the return, exactly as `hookspecs` declares them."""
    page = DOCS.read_text("utf-8")
    for name in sorted(n for n in dir(hookspecs) if n.startswith("irgov_")):
        signature = inspect.signature(getattr(hookspecs, name))
        arguments = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
        written = f"`{name}({arguments}) -> {signature.return_annotation}`"
        section = _section(page, name)
        assert written in section, f"docs/plugins.md `### {name}` does not show {written}"
        assert "```python" in section, f"docs/plugins.md `### {name}` has no example"


def test_the_types_table_shows_every_hook_type_as_declared() -> None:
    """Each type alias with its definition, each protocol with its members, as `hookspecs` has them."""
    page = DOCS.read_text("utf-8").replace("\\|", "|")
    tree = ast.parse(Path(hookspecs.__file__).read_text("utf-8"))
    aliases = {node.target.id: node.value for node in tree.body
               if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    for name, value in aliases.items():
        text = value.value if isinstance(value, ast.Constant) else ast.unparse(value).replace("'", "")
        assert f"| `{name}` | `{name} = {text}` |" in page, f"docs/plugins.md: type `{name}` is not `{text}`"
    protocols = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    assert protocols
    for protocol in protocols:
        members = []
        for item in protocol.body:
            if isinstance(item, ast.FunctionDef) and any(ast.unparse(d) == "property" for d in item.decorator_list):
                members.append(f"{item.name}: {ast.unparse(item.returns) if item.returns else ''}")
            elif isinstance(item, ast.FunctionDef):
                arguments = ", ".join(f"{a.arg}: {ast.unparse(a.annotation) if a.annotation else ''}"
                                      for a in item.args.args[1:])
                members.append(f"{item.name}({arguments}) -> {ast.unparse(item.returns) if item.returns else ''}")
        row = f"| `{protocol.name}` | protocol: " + ", ".join(f"`{m}`" for m in members) + " |"
        assert row in page, f"docs/plugins.md: protocol `{protocol.name}` is not shown as {row}"
    assert set(aliases) | {p.name for p in protocols} == set(hookspecs.__all__) - {"PROJECT_NAME", "hookimpl",
                                                                                   "hookspec"}


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
