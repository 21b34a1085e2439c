"""A broken plugin is one line naming it by its entry-point name, the same in every command, and
the kernel refuses to start with it unless it is blocked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main
from irgov_policy.errors import PluginError
from irgov_policy.kernel import Governance
from irgov_policy.plugins import get_plugin_manager, reset_plugin_manager

from .conftest import Install

POLICIES = Path(__file__).resolve().parents[2] / "policies"
HOOKIMPL = "from irgov_policy.hookspecs import hookimpl\n"

CASES = {
    "misspelt hook": (
        {"typo": HOOKIMPL + "@hookimpl\ndef irgov_register_check(register):\n    pass\n"},
        "plugin `typo` implements unknown hook `irgov_register_check`: did you mean `irgov_register_checks`?"),
    "unknown hook": (
        {"stranger": HOOKIMPL + "@hookimpl\ndef irgov_make_coffee():\n    pass\n"},
        "plugin `stranger` implements unknown hook `irgov_make_coffee`: hooks are `irgov_on_event`, "
        "`irgov_register_cel_functions`, `irgov_register_checks`, `irgov_register_event_sinks`, "
        "`irgov_register_hash_backends`, `irgov_register_rule_packs`"),
    "wrong hook signature": (
        {"sig": HOOKIMPL + "@hookimpl\ndef irgov_register_checks(reg):\n    pass\n"},
        "plugin `sig` implements `irgov_register_checks(reg)`, but the hook passes "
        "`irgov_register_checks(register)`"),
    "hook without the marker": (
        {"plain": "def irgov_register_checks(register):\n    pass\n"},
        "plugin `plain` defines `irgov_register_checks` without `@hookimpl`, so it is never called"),
    "raises at import": (
        {"boom": "import irgov_no_such_module\n"},
        "plugin `boom` failed to load: ModuleNotFoundError: No module named 'irgov_no_such_module'"),
    "raises in a hook": (
        {"raiser": HOOKIMPL + "@hookimpl\ndef irgov_register_cel_functions(register):\n"
                              "    raise RuntimeError('ACME_TOKEN is not set')\n"},
        "plugin `raiser` failed in `irgov_register_cel_functions`: RuntimeError: ACME_TOKEN is not set"),
    "calls register wrongly": (
        {"misuse": HOOKIMPL + "@hookimpl\ndef irgov_register_cel_functions(register):\n    register(len)\n"},
        "plugin `misuse` calls `register(name, function)` of `irgov_register_cel_functions` wrongly: "
        "missing a required argument: 'function'"),
    "two plugins, one function name": (
        {"first": HOOKIMPL + "@hookimpl\ndef irgov_register_cel_functions(register):\n"
                             "    register('acmeRegion', len)\n",
         "second": HOOKIMPL + "@hookimpl\ndef irgov_register_cel_functions(register):\n"
                              "    register('acmeRegion', len)\n"},
        "plugin `second` registers cel function `acmeRegion`, already registered by plugin `first`"),
    "a built-in hash backend's name": (
        {"shadow": HOOKIMPL + "class Fake:\n    name = 'sha256'\n    digest_size = 32\n"
                              "    def hexdigest(self, data):\n        return '0' * 64\n"
                              "@hookimpl\ndef irgov_register_hash_backends(register):\n    register(Fake())\n"},
        "plugin `shadow` registers hash backend `sha256`, already registered by plugin "
        "`irgov_policy.default_plugins.hash_backends`"),
    "a sink scheme twice": (
        {"sinks": HOOKIMPL + "@hookimpl\ndef irgov_register_event_sinks(register):\n"
                             "    register('acme', str)\n    register('ACME:', str)\n"},
        "plugin `sinks` registers event sink `acme` twice"),
    "a pack left out of the package data": (
        {"nopack": HOOKIMPL + "@hookimpl\ndef irgov_register_rule_packs(register):\n"
                              "    register('/nonexistent/acme.irgov.yaml')\n"},
        "plugin `nopack`: rule pack `/nonexistent/acme.irgov.yaml` does not exist "
        "(is it in the distribution's package data?)"),
    "a built-in cel function's name": (
        {"builtin": HOOKIMPL + "@hookimpl\ndef irgov_register_cel_functions(register):\n"
                               "    register('normalize', str)\n"},
        "plugin `builtin` registers cel function `normalize`, a function of irgov_policy itself"),
}

IR = ('{"tenant_id": "t", "request_id": "r", "steps": [{"action": "course.create", '
      '"provider": "course_factory.v1", "resource": "x", "idempotency_key": "k"}]}')


def _install_case(install_plugin: Install, case: str) -> str:
    plugins, message = CASES[case]
    for name, source in plugins.items():
        install_plugin(name, source)
    return message


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", [["check", "ir.json"], ["plugins"], ["plugins", "-v", "--format", "json"],
                                     ["test", "--plugins", str(POLICIES)]])
def test_every_command_prints_the_same_line(install_plugin: Install, case: str, command: list[str]) -> None:
    message = _install_case(install_plugin, case)
    with open("ir.json", "w", encoding="utf-8") as file:
        file.write(IR)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == f"irgov: error: {message}\n"


def test_two_entry_points_for_one_module(install_plugin: Install) -> None:
    path = install_plugin("one", HOOKIMPL)
    (path.parent / "irgov_test_one-0.1.dist-info" / "entry_points.txt").write_text(
        "[irgov_policy]\none = irgov_test_one_plugin\ntwo = irgov_test_one_plugin\n", "utf-8")
    reset_plugin_manager()
    with pytest.raises(PluginError) as caught:
        get_plugin_manager()
    assert str(caught.value) == "plugin `two` is the same object as plugin `one`: declare one entry point"


def test_the_kernel_refuses_to_start_unless_the_plugin_is_blocked(install_plugin: Install,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    message = _install_case(install_plugin, "misspelt hook")
    with pytest.raises(PluginError) as caught:
        Governance.from_config()
    assert str(caught.value) == message
    with pytest.raises(PluginError):  # the failure is kept: every later use says the same
        get_plugin_manager()
    monkeypatch.setenv("IRGOV_PLUGINS_BLOCK", "odoo,typo")
    reset_plugin_manager()
    with Governance.from_config() as kernel:
        assert kernel.validate(IR.encode()).status == "PASS"


def test_a_fresh_process_reads_the_entry_point_and_prints_one_line(install_plugin: Install) -> None:
    """As a user's shell runs it: a new interpreter, the entry point read from the path."""
    path = install_plugin("typo", CASES["misspelt hook"][0]["typo"])
    environment = dict(os.environ, PYTHONPATH=str(path.parent), IRGOV_PLUGINS_BLOCK="odoo")
    for command in (["check", "-"], ["serve", "--port", "0"]):
        result = subprocess.run([sys.executable, "-c", "from irgov_policy.cli import main; main()", *command],
                                input=IR, capture_output=True, text=True, env=environment, timeout=60)
        assert result.returncode == 1, result.stderr
        assert result.stderr.splitlines()[-1] == f"irgov: error: {CASES['misspelt hook'][1]}", result.stderr
        assert "Traceback" not in result.stderr
