"""Documentation that is generated or mirrors code must not drift from it."""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main
from irgov_policy.plugins import reset_plugin_manager

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("_gen_cli", DOCS / "_gen_cli.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    expected = generator.render()
    assert (DOCS / "cli.md").read_text("utf-8") == expected, (
        "docs/cli.md is out of date: run `python docs/_gen_cli.py`")


_BLOCK = re.compile(r"```(json|console)\n(.*?)```", re.DOTALL)
_FILE_NAME = re.compile(r"`([\w.-]+\.json)`")
# What legitimately differs between machines and runs: the CEL engine installed, the duration,
# and the digests of packs edited since the page was written.
_VARIES = [(re.compile(r"engine [\w-]+; \d+ us"), "engine E; N us"),
           (re.compile(r"(@[\w.]+) sha256:[0-9a-f]{64}"), r"\1 sha256:PACK")]


def _normalise(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        for pattern, replacement in _VARIES:
            line = pattern.sub(replacement, line)
        out.append(line.rstrip())
    return out


def test_getting_started_commands_print_what_the_page_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `irgov` command of the page, run on the page's own files, gives the output and exit
    code the page shows (the plugin section, which needs an installed plugin, shows none)."""
    monkeypatch.setenv("IRGOV_PLUGINS_BLOCK", "odoo")  # the page shows the baseline alone
    monkeypatch.setenv("COLUMNS", "200")
    reset_plugin_manager()
    page = (DOCS / "getting-started.md").read_text("utf-8")
    runner = CliRunner()
    checked = 0
    try:
        for match in _BLOCK.finditer(page):
            kind, body = match.groups()
            if kind == "json":
                names = _FILE_NAME.findall(page[: match.start()].rstrip().rsplit("\n\n", 1)[-1])
                if names:
                    Path(names[-1]).write_text(body, "utf-8")
                continue
            commands: list[tuple[str, list[str]]] = []
            for line in body.splitlines():
                if line.startswith("$ "):
                    commands.append((line[2:].split(" #")[0].strip(), []))
                elif commands:
                    commands[-1][1].append(line)
            last_exit: int | None = None
            for command, shown in commands:
                argv = shlex.split(command)
                if argv[0] == "cat":
                    Path(argv[1]).write_text("\n".join(shown) + "\n", "utf-8")
                elif argv == ["echo", "$?"]:
                    assert [str(last_exit)] == shown, f"`{command}` after the previous command"
                elif argv[0] == "irgov" and shown:
                    result = runner.invoke(main, argv[1:])
                    last_exit = result.exit_code
                    assert _normalise(result.output.rstrip("\n").splitlines()) == _normalise(shown), command
                    checked += 1
    finally:
        reset_plugin_manager()
    assert checked >= 4, "the page's console examples were not found"


@pytest.mark.parametrize("page", ["deployment.md", "getting-started.md"])
def test_configuration_examples_load(page: str, tmp_path: Path) -> None:
    """Each YAML configuration a page shows is a valid configuration, api keys included."""
    from irgov_policy.config import load_config
    from irgov_policy.http.auth import ApiKeyAuth

    blocks = re.findall(r"```yaml\n(.*?)```", (DOCS / page).read_text("utf-8"), re.DOTALL)
    assert blocks, f"no configuration example in docs/{page}"
    for number, block in enumerate(blocks, start=1):
        path = tmp_path / f"example-{number}.yaml"
        path.write_text(block, "utf-8")
        config = load_config(path, environ={})
        assert config != load_config(None, environ={}), f"docs/{page} example {number} changes nothing"
        ApiKeyAuth(config.api_keys)


def _checked(block: str) -> str:
    """`expr  # literal` lines become assertions, so the page's comments are checked too."""
    lines = []
    for line in block.splitlines():
        code, _, comment = line.partition("  #")
        try:
            ast.parse(code.strip(), mode="eval")
            expected = ast.literal_eval(comment.strip())
        except (SyntaxError, ValueError):
            lines.append(line)
            continue
        indent = code[: len(code) - len(code.lstrip())]
        lines.append(f"{indent}assert ({code.strip()}) == {expected!r}, {code.strip()!r}")
    return "\n".join(lines)


def test_getting_started_python_runs_as_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRGOV_PLUGINS_BLOCK", "odoo")
    reset_plugin_manager()
    page = (DOCS / "getting-started.md").read_text("utf-8")
    escalate = re.search(r"Save an IR as `escalate.json`:\n\n```json\n(.*?)```", page, re.DOTALL)
    assert escalate is not None
    Path("escalate.json").write_text(escalate.group(1), "utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    assert len(blocks) >= 2
    try:
        for block in blocks:
            code = _checked(block)
            assert "assert (" in code, "the example lost its expected values"
            exec(compile(code, "docs/getting-started.md", "exec"), {})  # noqa: S102 - the page's own code
    finally:
        reset_plugin_manager()
