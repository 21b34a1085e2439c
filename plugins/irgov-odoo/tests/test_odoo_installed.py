"""The plugin as installed: discovered through its entry point by `irgov plugins`, by
`irgov check` and by `PolicyEngine.default()`. Each runs in a fresh process, so the entry
points are read exactly as a user's command would read them."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from irgov_policy.testing import make_ir, make_step

PLUGIN_ROOT = Path(__file__).resolve().parents[1]


def _installed() -> bool:
    """Installed into the environment, as a fresh process sees it: pytest's `pythonpath` puts the
    checkout on this process's path, so only a separate interpreter tells an install apart from
    metadata a build left in the checkout."""
    probe = ("import importlib.metadata as m, sys; "
             "sys.exit(0 if any(e.name == 'odoo' for e in m.entry_points(group='irgov_policy')) else 1)")
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", probe], cwd="/", env=environment, timeout=60).returncode == 0


if not _installed():
    if os.environ.get("IRGOV_REQUIRE_ODOO_PLUGIN") == "1":
        pytest.fail("IRGOV_REQUIRE_ODOO_PLUGIN=1 but irgov-odoo is not installed", pytrace=False)
    pytest.skip("irgov-odoo is not installed (pip install -e plugins/irgov-odoo)", allow_module_level=True)

HOOKS = ["irgov_register_cel_functions", "irgov_register_checks", "irgov_register_rule_packs"]


def irgov(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("IRGOV_PLUGINS", "IRGOV_PLUGINS_BLOCK")}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", "from irgov_policy.cli import main; main()", *args],
                          input=stdin, capture_output=True, text=True, env=environment, timeout=60)


def test_irgov_plugins_lists_the_odoo_plugin_and_its_hooks() -> None:
    result = irgov("plugins", "--format", "json")
    assert result.returncode == 0, result.stderr
    [odoo] = [p for p in json.loads(result.stdout) if p["name"] == "odoo"]
    assert odoo["builtin"] is False
    assert odoo["version"] == importlib.metadata.version("irgov-odoo")
    assert odoo["hooks"] == HOOKS
    text = irgov("plugins")
    assert text.returncode == 0 and "odoo" in text.stdout and "irgov_register_checks" in text.stdout


def test_irgov_plugins_verbose_lists_what_the_plugin_registered() -> None:
    result = irgov("plugins", "-v", "--format", "json")
    assert result.returncode == 0, result.stderr
    [odoo] = [p for p in json.loads(result.stdout) if p["name"] == "odoo"]
    assert odoo["distribution"] == "irgov-odoo" and odoo["module"] == "irgov_odoo.plugin"
    assert odoo["registered"] == {"checks": ["odoo-bulk-domain"],
                                  "cel_functions": ["odooDomainMatchesAll", "odooModules"],
                                  "rule_packs": ["odoo.irgov.yaml"], "event_sinks": [], "hash_backends": []}
    text = irgov("plugins", "-v")
    assert "  cel functions: odooDomainMatchesAll, odooModules" in text.stdout, text.stdout


def test_blocking_the_plugin_removes_it() -> None:
    result = irgov("plugins", "--format", "json", IRGOV_PLUGINS_BLOCK="odoo")
    assert result.returncode == 0, result.stderr
    assert "odoo" not in [p["name"] for p in json.loads(result.stdout)]


def test_irgov_check_uses_the_installed_plugin(tmp_path: Path) -> None:
    ir = make_ir(make_step("odoo.update_record", params={"model": "res.users", "ids": [2], "values": {"active": False}}))
    path = tmp_path / "ir.json"
    path.write_text(json.dumps(ir))
    installed = irgov("check", str(path), "--format", "json")
    assert installed.returncode == 3, installed.stderr
    decision = json.loads(installed.stdout)
    assert {p["name"] for p in decision["packs"]} == {"baseline", "odoo"}
    assert [h["rule"] for h in decision["steps"][0]["hits"] if h["pack"] == "odoo"] == ["odoo.critical-model"]
    blocked = irgov("check", str(path), "--format", "json", IRGOV_PLUGINS_BLOCK="odoo")
    assert blocked.returncode == 0, blocked.stderr
    assert json.loads(blocked.stdout)["status"] == "PASS"


def test_uninstalling_base_is_rejected_by_default(tmp_path: Path) -> None:
    path = tmp_path / "ir.json"
    path.write_text(json.dumps(make_ir(make_step("odoo.uninstall_module", resource="base"))))
    result = irgov("check", str(path), "--explain")
    assert result.returncode == 4, result.stderr
    assert "ODOO_CORE_MODULE_UNINSTALL" in result.stdout and "odoo.core-module-uninstall" in result.stdout
