"""`irgov plugin new`: the package it writes installs into a fresh virtual environment, passes its
own tests there, and its check, CEL function, pack, sink and hash backend are used by `irgov check`
and listed by `irgov plugins -v`, as a plugin author would see them."""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main

CLI = "from irgov_policy.cli import main; main()"


def test_plugin_new_writes_a_package_for_every_hook(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["plugin", "new", "irgov-acme-cloud", "--directory", str(tmp_path)])
    assert result.exit_code == 0, result.output
    root = tmp_path / "irgov-acme-cloud"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        "README.md", "irgov_acme_cloud/__init__.py", "irgov_acme_cloud/checks.py", "irgov_acme_cloud/functions.py",
        "irgov_acme_cloud/hashes.py", "irgov_acme_cloud/packs/acme_cloud.irgov-test.yaml",
        "irgov_acme_cloud/packs/acme_cloud.irgov.yaml", "irgov_acme_cloud/plugin.py", "irgov_acme_cloud/py.typed",
        "irgov_acme_cloud/sinks.py", "pyproject.toml", "tests/conftest.py", "tests/test_plugin.py"]
    pyproject = (root / "pyproject.toml").read_text("utf-8")
    assert '[project.entry-points.irgov_policy]\nacme_cloud = "irgov_acme_cloud.plugin"' in pyproject
    assert 'irgov_acme_cloud = ["packs/*.irgov.yaml", "packs/*.irgov-test.yaml", "py.typed"]' in pyproject
    assert "{{" not in "".join(p.read_text("utf-8") for p in root.rglob("*") if p.is_file())
    plugin = (root / "irgov_acme_cloud" / "plugin.py").read_text("utf-8")
    assert 'register("acmeCloudRegion", region)' in plugin and 'register("acme-cloud-audit", AuditFileSink)' in plugin


@pytest.mark.parametrize(("arguments", "message"), [
    (["Acme"], "plugin name `Acme` must be lower case letters, digits and single `-` or `_`, starting with a "
               "letter, such as `irgov-acme`"),
    (["irgov-policy"], "plugin name `irgov-policy` must be lower case letters, digits and single `-` or `_`, "
                       "starting with a letter, such as `irgov-acme`"),
    (["existing"], "`existing` already exists"),
])
def test_plugin_new_refuses_in_one_line(arguments: list[str], message: str) -> None:
    os.mkdir("existing")
    result = CliRunner().invoke(main, ["plugin", "new", *arguments])
    assert result.exit_code == 1
    assert result.stderr == f"irgov: error: {message}\n"


def _fresh_environment(path: Path) -> Path:
    """A new virtual environment that sees this one's packages (irgov_policy as installed here,
    pytest, pip) through `site.addsitedir`, so installing into it needs nothing from the network
    but the plugin's build backend; whatever is installed into it stays out of this environment."""
    venv.EnvBuilder(with_pip=False).create(path)
    python = path / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    here = [p for p in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if os.path.isdir(p)]
    Path(target, "irgov-parent.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in sorted(here)), "utf-8")
    return python


def _run(python: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("IRGOV_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    environment.update(env)
    return subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True, env=environment,
                          timeout=600)


@pytest.mark.slow
def test_a_generated_plugin_installs_passes_its_tests_and_is_used(tmp_path: Path) -> None:
    python = _fresh_environment(tmp_path / "venv")
    generated = _run(python, "-c", CLI, "plugin", "new", "irgov-acme", cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    plugin = tmp_path / "irgov-acme"
    installed = _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(plugin), cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # This environment does not see it: the install went into the fresh one only.
    assert _run(Path(sys.executable), "-c", "import irgov_acme", cwd=tmp_path).returncode != 0

    tests = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=plugin)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "failed" not in tests.stdout

    listing = _run(python, "-c", CLI, "plugins", "-v", "--format", "json", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    [acme] = [p for p in json.loads(listing.stdout) if p["name"] == "acme"]
    assert acme["distribution"] == "irgov-acme" and acme["version"] == "0.1.0" and not acme["builtin"]
    assert acme["registered"] == {"checks": ["acme-unbounded-delete"], "cel_functions": ["acmeRegion"],
                                  "rule_packs": ["acme.irgov.yaml"], "event_sinks": ["acme-audit"],
                                  "hash_backends": ["acme-sha3"]}
    assert acme["hooks"] == ["irgov_on_event", "irgov_register_cel_functions", "irgov_register_checks",
                             "irgov_register_event_sinks", "irgov_register_hash_backends",
                             "irgov_register_rule_packs"]
    text = _run(python, "-c", CLI, "plugins", "-v", cwd=tmp_path)
    assert "  cel functions: acmeRegion" in text.stdout and "  event sinks: acme-audit" in text.stdout

    steps = [{"action": "acme.sync_records", "provider": "acme.v1", "resource": "acme://gov/records",
              "idempotency_key": "k-1"},
             {"action": "acme.delete_records", "provider": "acme.v1", "resource": "acme://eu-west/records",
              "idempotency_key": "k-2"}]
    (tmp_path / "ir.json").write_text(json.dumps({"tenant_id": "t1", "request_id": "r1", "steps": steps}))
    events = tmp_path / "audit" / "events.jsonl"
    checked = _run(python, "-c", CLI, "check", "ir.json", "--format", "json", cwd=tmp_path,
                   IRGOV_EVENT_SINKS=f"acme-audit://{events}")
    assert checked.returncode == 3, checked.stdout + checked.stderr  # ESCALATE
    decision = json.loads(checked.stdout)
    hits = {(s["index"], h["rule"], h["pack"]) for s in decision["steps"] for h in s["hits"]}
    assert (0, "acme.restricted-region", "acme") in hits                       # the pack and the function
    assert (1, "acme.unbounded-delete", "plugin:acme-unbounded-delete") in hits  # the check
    assert decision["risk_tier"] == 3
    [event] = [json.loads(line) for line in events.read_text("utf-8").splitlines()]  # the sink
    assert event["type"] == "ir.validated_escalate" and event["payload"]["request_id"] == "r1"

    hashed = _run(python, "-c", CLI, "hash", "ir.json", "--algorithm", "acme-sha3", cwd=tmp_path)  # the backend
    assert hashed.returncode == 0 and hashed.stdout.startswith("ir_hash  acme-sha3:"), hashed.stdout + hashed.stderr

    policy = _run(python, "-c", CLI, "test", "--plugins", str(plugin / "irgov_acme" / "packs"), cwd=tmp_path)
    assert policy.returncode == 0, policy.stdout + policy.stderr
    counted = re.search(r"(\d+) passed, 0 failed", policy.stdout)  # 4 cases on each installed engine
    assert counted and int(counted.group(1)) % 4 == 0 and int(counted.group(1)) >= 4, policy.stdout
