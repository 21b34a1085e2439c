"""Bug 2: every verb reads the one configuration (`--config`, `IRGOV_CONFIG`, `IRGOV_*`), and
flags override it, so `irgov check` and `irgov serve` decide alike and print the same hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main

IR = {"tenant_id": "t1", "request_id": "r1", "steps": [
    {"step_id": "s0", "action": "course.create", "provider": "course_factory.v1", "resource": "course/intro",
     "params": {}, "idempotency_key": "k0"},
    {"step_id": "s1", "action": "course.publish", "provider": "course_factory.v1", "resource": "course/intro",
     "params": {}, "idempotency_key": "k1"},
]}
# A pack that knows only `course.create`: with it, the IR's second step is an unknown action.
TINY = """apiVersion: irgov.dev/v1
kind: RulePack
metadata:
  name: tiny
  version: "1"
vocabularies:
  actions: [course.create]
  providers: [course_factory.v1]
providerFamilies:
  course: [course_factory]
"""
API_KEY = "alice-submitter-key-0001"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("IRGOV_CONFIG", "IRGOV_PACKS", "IRGOV_HASH_ALGORITHM", "IRGOV_MAX_STEPS", "IRGOV_EVENT_SINKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IRGOV_PLUGIN_PACKS", "false")  # the packs named here, and nothing else
    monkeypatch.setenv("IRGOV_OUTBOX", "memory://")
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "tiny.irgov.yaml").write_text(TINY, "utf-8")
    (tmp_path / "ir.json").write_text(json.dumps(IR), "utf-8")
    return tmp_path


def irgov(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def decided(*args: str) -> dict[str, object]:
    code, out, err = irgov("check", "ir.json", "--format", "json", "--budget-ms", "60000", *args)
    assert code in (0, 3, 4), err
    decision: dict[str, object] = json.loads(out)
    return decision


def pack_names(decision: dict[str, object]) -> list[str]:
    packs = decision["packs"]
    assert isinstance(packs, list)
    return [p["name"] for p in packs]


def codes(decision: dict[str, object]) -> list[str]:
    violations = decision["violations"]
    assert isinstance(violations, list)
    return [v["code"] for v in violations]


def test_check_decides_with_the_packs_of_irgov_packs(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pack_names(decided()) == ["baseline"]
    monkeypatch.setenv("IRGOV_PACKS", "packs")
    decision = decided()
    assert pack_names(decision) == ["tiny"]
    assert decision["status"] == "REJECT" and "UNKNOWN_ACTION" in codes(decision)


def test_check_decides_with_the_packs_of_a_config_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "cfg.yaml").write_text("packs: [packs]\n", "utf-8")
    assert pack_names(decided("--config", "cfg.yaml")) == ["tiny"]
    monkeypatch.setenv("IRGOV_CONFIG", "cfg.yaml")
    assert pack_names(decided()) == ["tiny"]
    # a flag overrides the file
    from irgov_policy.policy.shipped import baseline_pack_path

    assert pack_names(decided("--packs", str(baseline_pack_path()))) == ["baseline"]


def test_hash_algorithm_and_input_limits_of_the_configuration(workdir: Path) -> None:
    (workdir / "cfg.yaml").write_text("hash_algorithm: blake3\n", "utf-8")
    decision = decided("--config", "cfg.yaml")
    assert str(decision["ir_hash"]).startswith("blake3:")
    code, out, err = irgov("hash", "ir.json", "--config", "cfg.yaml", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["ir_hash"] == decision["ir_hash"]
    code, out, _ = irgov("hash", "ir.json", "--config", "cfg.yaml", "--algorithm", "sha256", "--format", "json")
    assert code == 0 and json.loads(out)["ir_hash"].startswith("sha256:")

    (workdir / "limits.yaml").write_text("max_steps: 1\n", "utf-8")
    decision = decided("--config", "limits.yaml")
    assert decision["status"] == "REJECT" and codes(decision) == ["INVALID_IR"]
    code, _, err = irgov("hash", "ir.json", "--config", "limits.yaml")
    assert code == 1 and err.startswith("irgov: error: ir.json:") and err.count("\n") == 1

    (workdir / "small.yaml").write_text("max_bytes: 100\n", "utf-8")  # the IR file is larger
    for verb in (["check", "ir.json"], ["hash", "ir.json"], ["diff", "ir.json", "ir.json"]):
        code, out, err = irgov(*verb, "--config", "small.yaml")
        assert (code, out) == (1, ""), verb
        assert err == "irgov: error: `ir.json` exceeds the limit of 100 bytes\n", verb


def test_a_bad_configuration_is_one_line_for_every_verb(workdir: Path) -> None:
    (workdir / "bad.yaml").write_text("hash_algorith: blake3\n", "utf-8")
    for verb in (["check", "ir.json"], ["hash", "ir.json"], ["diff", "ir.json", "ir.json"], ["packs"],
                 ["events", "status"], ["approvals", "list", "--tenant", "t1"]):
        code, out, err = irgov(*verb, "--config", "bad.yaml")
        assert code == 1 and out == "", verb
        assert err == "irgov: error: unknown setting `hash_algorith` in `bad.yaml`\n", verb


def test_check_serve_and_packs_agree_for_one_configuration(workdir: Path) -> None:
    """The HTTP app `irgov serve` runs, built from the same file, gives the same IR hash, the
    same decision and the same packs as `irgov check` and `irgov packs`."""
    from fastapi.testclient import TestClient

    from irgov_policy.http import create_app

    config = workdir / "cfg.yaml"
    config.write_text("packs: [packs]\nhash_algorithm: blake3\nmax_steps: 5\n"
                      f"approval_store: sqlite:///{workdir}/state/approvals.db\n"
                      f"outbox: sqlite:///{workdir}/state/outbox.db\n"
                      f"api_keys: ['alice:submitter:t1:{API_KEY}']\n", "utf-8")
    from_check = decided("--config", str(config))
    code, out, err = irgov("packs", "--config", str(config), "--format", "json")
    assert code == 0, err
    from_packs = json.loads(out)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with TestClient(create_app(str(config))) as client:
        from_serve = client.post("/validate", json=IR, headers=headers).json()
        served_packs = client.get("/packs", headers=headers).json()
    assert from_serve["ir_hash"] == from_check["ir_hash"] and str(from_check["ir_hash"]).startswith("blake3:")
    assert from_serve["status"] == from_check["status"] == "REJECT"
    assert from_serve["packs"] == from_check["packs"]
    assert served_packs["digest"] == from_packs["digest"] and served_packs["engine"] == from_packs["engine"]
    assert served_packs["packs"] == from_packs["packs"] and [p["name"] for p in from_packs["packs"]] == ["tiny"]
    [tiny] = from_packs["packs"]
    assert Path(tiny["path"]).resolve() == (workdir / "packs" / "tiny.irgov.yaml").resolve()
    assert (tiny["rules"], tiny["tiers"]) == (0, 0)
