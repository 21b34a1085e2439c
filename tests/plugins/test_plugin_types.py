"""The hooks are typed: mypy accepts the plugin `irgov plugin new` writes and catches a plugin that
registers a check, a CEL function or a sink with the wrong signature."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from irgov_policy.cli import main

ROOT = Path(__file__).resolve().parents[2]

WRONG = textwrap.dedent('''\
    from collections.abc import Iterator

    from irgov_policy import Finding, Step
    from irgov_policy.hookspecs import RegisterCelFunction, RegisterCheck, RegisterEventSink, hookimpl


    def lonely_check(step: Step) -> Iterator[Finding]:
        yield Finding(rule="x", tier=1, reason="a check takes (step, index, ir)")


    class DictSink:
        name = "dict"

        def __init__(self, url: str) -> None:
            self.url = url

        def deliver(self, event: dict[str, object]) -> None:
            """A sink receives an `Event`, not its `to_dict()`."""


    @hookimpl
    def irgov_register_checks(register: RegisterCheck) -> None:
        register(lonely_check)


    @hookimpl
    def irgov_register_cel_functions(register: RegisterCelFunction) -> None:
        register(len)


    @hookimpl
    def irgov_register_event_sinks(register: RegisterEventSink) -> None:
        register("dict", DictSink)
''')


def _mypy(*paths: Path) -> subprocess.CompletedProcess[str]:
    # From the checkout, with its configuration and cache: irgov_policy is read from source, as
    # an installed copy (with its py.typed marker) would be.
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *map(str, paths)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_mypy_catches_a_wrong_signature(tmp_path: Path) -> None:
    plugin = tmp_path / "wrong_plugin.py"
    plugin.write_text(WRONG, "utf-8")
    result = _mypy(plugin)
    assert result.returncode == 1, result.stdout + result.stderr
    errors: dict[int, str] = {}
    for match in re.finditer(r"wrong_plugin\.py:(\d+): error: (.*)", result.stdout):
        errors[int(match.group(1))] = errors.get(int(match.group(1)), "") + match.group(2)
    lines = WRONG.splitlines()
    where = {n: lines[n - 1].strip() for n in errors}
    assert where == {23: "register(lonely_check)", 28: "register(len)", 33: 'register("dict", DictSink)'}, result.stdout
    assert '"Callable[[Step], Iterator[Finding]]"' in errors[23] and "[arg-type]" in errors[23]
    assert '"Callable[[Sized], int]"; expected "str"' in errors[28]  # register(name, function)
    assert '"type[DictSink]"' in errors[33] and '"Callable[[str], EventSink]"' in errors[33]


def test_mypy_accepts_the_generated_plugin(tmp_path: Path) -> None:
    assert CliRunner().invoke(main, ["plugin", "new", "irgov-typed", "-d", str(tmp_path)]).exit_code == 0
    root = tmp_path / "irgov-typed"
    result = _mypy(root / "irgov_typed", root / "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_accepts_the_odoo_plugin() -> None:
    result = _mypy(ROOT / "plugins" / "irgov-odoo" / "irgov_odoo")
    assert result.returncode == 0, result.stdout + result.stderr
