from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from irgov_policy import __version__
from irgov_policy.cli import main
from irgov_policy.hashing import step_hash
from irgov_policy.model import parse_ir

from .helpers import ir_doc, step


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _write(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value) if not isinstance(value, str) else value)
    return str(path)


def _good_dag(doc: dict[str, Any]) -> list[dict[str, str]]:
    ir = parse_ir(doc)
    return [{"ir_step_id": sid, "ir_step_hash": step_hash(s)} for sid, s in zip(ir.step_ids(), ir.steps, strict=True)]


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_hash_json_output(runner: CliRunner, tmp_path: Path) -> None:
    doc = ir_doc(step(), step(resource="zone/b"))
    result = runner.invoke(main, ["hash", _write(tmp_path, "ir.json", doc), "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["ir_hash"].startswith("sha256:") and len(out["step_hashes"]) == 2


def test_hash_reads_stdin_and_supports_blake3(runner: CliRunner) -> None:
    result = runner.invoke(main, ["hash", "-", "--algorithm", "blake3"], input=json.dumps(ir_doc()))
    assert result.exit_code == 0 and "blake3:" in result.output


def test_hash_errors_are_one_line_with_location(runner: CliRunner, tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", '{"tenant_id": "t", "tenant_id": "u", "steps": []}')
    result = runner.invoke(main, ["hash", path])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert f"{path}:/tenant_id: duplicate key `tenant_id`" in result.output
    assert "Traceback" not in result.output
    missing = runner.invoke(main, ["hash", str(tmp_path / "nope.json")])
    assert missing.exit_code == 1 and "cannot read" in missing.output
    unknown = runner.invoke(main, ["hash", path, "--algorithm", "md5"])
    assert unknown.exit_code == 1 and "unknown hash algorithm `md5`" in unknown.output


def test_diff_exit_codes(runner: CliRunner, tmp_path: Path) -> None:
    doc = ir_doc(step(), step(resource="zone/b"))
    ir_path = _write(tmp_path, "ir.json", doc)
    ok = runner.invoke(main, ["diff", ir_path, _write(tmp_path, "dag.json", _good_dag(doc))])
    assert ok.exit_code == 0, ok.output
    tampered = _good_dag(doc)
    tampered[1]["ir_step_hash"] = "sha256:" + "0" * 64
    bad = runner.invoke(main, ["diff", ir_path, _write(tmp_path, "bad.json", tampered), "--format", "json"])
    assert bad.exit_code == 1
    report = json.loads(bad.output)
    assert report["success"] is False and report["hash_mismatches"][0]["dag_node_hash"] == "sha256:" + "0" * 64


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d + [dict(d[0])],                                      # duplicate node id
        lambda d: [{"ir_step_id": d[0]["ir_step_id"], "ir_step_hash": "sha256:" + "1" * 64}] + d,  # wrong copy first
        lambda d: d[:1],                                                 # missing step
        lambda d: d + [{"ir_step_id": "x", "ir_step_hash": d[0]["ir_step_hash"]}],  # extra node
        lambda d: [{"ir_step_id": 0, "ir_step_hash": d[0]["ir_step_hash"]}, d[1]],   # int id
        lambda d: [{"ir_step_id": "", "ir_step_hash": d[0]["ir_step_hash"]}, d[1]],  # empty id
        lambda d: [{"ir_step_id": "0", "ir_step_hash": ""}, d[1]],               # empty hash
        lambda d: [{"ir_step_id": "0", "ir_step_hash": d[0]["ir_step_hash"][7:]}, d[1]],  # unprefixed
        lambda d: [{"ir_step_id": "0", "ir_step_hash": d[0]["ir_step_hash"].upper()}, d[1]],  # upper case
        lambda d: [{"ir_step_id": "0", "ir_step_hash": d[0]["ir_step_hash"][:23]}, d[1]],  # truncated
        lambda d: [{"ir_step_hash": d[0]["ir_step_hash"]}, d[1]],                # missing id
        lambda d: [{"ir_step_id": "0"}, d[1]],                                   # missing hash
        lambda d: [{"ir_step_id": "0", "ir_step_hash": " " + d[0]["ir_step_hash"]}, d[1]],  # whitespace
        lambda d: [{"ir_step_id": "0", "ir_step_hash": "blake3:" + d[0]["ir_step_hash"][7:]}, d[1]],  # algorithm
        lambda d: ["0", d[1]],                                                   # not an object
        lambda d: {"nodes": d[:1] + [None]},                                     # null node
        lambda d: [],                                                            # empty dag
    ],
)
def test_diff_catches_every_malformed_or_tampered_dag(runner: CliRunner, tmp_path: Path, mutate: Any) -> None:
    doc = ir_doc(step(), step(resource="zone/b"))
    dag = mutate(_good_dag(doc))
    result = runner.invoke(main, ["diff", _write(tmp_path, "ir.json", doc), _write(tmp_path, "dag.json", dag)])
    assert result.exit_code == 1, result.output
    assert "failed" in result.output


def test_diff_catches_duplicate_ir_step_ids(runner: CliRunner, tmp_path: Path) -> None:
    doc = ir_doc(step(), step(step_id="0", resource="zone/b"))  # `0` is also the first step's index
    result = runner.invoke(main, ["diff", _write(tmp_path, "ir.json", doc),
                                  _write(tmp_path, "dag.json", _good_dag(doc)), "--format", "json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.output)["duplicate_ir_step_ids"] == ["0"]


def test_diff_refuses_a_malformed_ir_with_one_line(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["diff", _write(tmp_path, "ir.json", {"tenant_id": "t"}),
                                  _write(tmp_path, "dag.json", [])])
    assert result.exit_code == 1 and "`steps` is required" in result.output


def test_plugins_lists_builtins(runner: CliRunner) -> None:
    result = runner.invoke(main, ["plugins", "--format", "json"])
    assert result.exit_code == 0
    names = {p["name"] for p in json.loads(result.output)}
    assert "irgov_policy.default_plugins.hash_backends" in names


def test_every_command_is_listed_and_resolves(runner: CliRunner) -> None:
    from irgov_policy.cli import COMMANDS

    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
        assert runner.invoke(main, [name, "--help"]).exit_code == 0, name


def test_check_does_not_import_unrelated_commands() -> None:
    import subprocess
    import sys

    code = ("import sys; from irgov_policy.cli import main\n"
            "try:\n    main(['check', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED:' + ','.join(m for m in ('irgov_policy.cli.approvals_cmd', 'irgov_policy.cli.serve_cmd',"
            " 'irgov_policy.http') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "LOADED:"


def test_cli_state_stays_in_the_test_directory(runner: CliRunner, tmp_path: Path, _isolated_cwd: Path) -> None:
    # `irgov diff` records its event in `./.irgov/outbox.db`: under a test, that is a temporary directory.
    doc = ir_doc(step())
    result = runner.invoke(main, ["diff", _write(tmp_path, "ir.json", doc), _write(tmp_path, "dag.json", _good_dag(doc))])
    assert result.exit_code == 0, result.output
    assert Path.cwd() == _isolated_cwd and (_isolated_cwd / ".irgov" / "outbox.db").exists()


def test_library_warnings_reach_the_user_as_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import logging, sys; from irgov_policy.cli import main\n"
            "sys.argv = ['irgov', 'plugins', '--format', 'json']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "logging.getLogger('irgov_policy.example').warning('something odd with `x`')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "irgov: warning: something odd with `x`"
