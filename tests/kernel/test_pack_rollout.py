"""The kernel's pack rollout: signed packs required at load and at reload, the decision log and
shadow packs, each configured through `GovernanceConfig`."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from policy.conftest import copy_pack_folder

from irgov_policy.cli import main
from irgov_policy.errors import BundleError, ConfigError
from irgov_policy.kernel import Governance
from irgov_policy.policy.bundle import (
    build_bundle,
    generate_key_pair,
    load_private_key,
    public_key_text,
    sign_bundle,
)

IR = {"tenant_id": "t1", "request_id": "roll-1", "steps": [
    {"action": "dns.update_records", "provider": "dns.cloudflare", "resource": "dns:example.com",
     "params": {"ttl": "300"}, "idempotency_key": "roll-1-0"}]}


def _settings(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return {"approval_store": "memory://", "outbox": "memory:", "watch_packs": False, "plugin_packs": False,
            **overrides}


@pytest.fixture
def signed_bundle(tmp_path: Path) -> tuple[Path, str, Path]:
    """(bundle, trusted key entry, private key) for a folder of the baseline and its tests."""
    folder = copy_pack_folder(tmp_path / "packs")
    key, _, public = generate_key_pair(tmp_path / "keys" / "release")
    bundle = tmp_path / "release.tar.gz"
    build_bundle(folder, bundle)
    sign_bundle(bundle, load_private_key(key))
    return bundle, public_key_text(public), key


def _tamper(bundle: Path) -> None:
    with tarfile.open(bundle, "r:gz") as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive}  # type: ignore[union-attr]
    members["baseline.irgov.yaml"] = members["baseline.irgov.yaml"].replace(b"tier: 3", b"tier: 0")
    with tarfile.open(bundle, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.fixture
def kernel(tmp_path: Path, signed_bundle: tuple[Path, str, Path]) -> Iterator[Governance]:
    bundle, trusted, _ = signed_bundle
    gov = Governance.from_config(environ={}, **_settings(tmp_path, packs=[str(bundle)], require_signed_packs=True,
                                                         trusted_pack_keys=[trusted]))
    yield gov
    gov.close()


def test_a_signed_bundle_is_loaded_when_signatures_are_required(kernel: Governance) -> None:
    assert kernel.validate(IR).status == "ESCALATE"
    assert [p["name"] for p in kernel.pack_status()["packs"]] == ["baseline"]


def test_a_tampered_bundle_is_refused_at_load_in_one_line(tmp_path: Path,
                                                         signed_bundle: tuple[Path, str, Path]) -> None:
    bundle, trusted, _ = signed_bundle
    _tamper(bundle)
    settings = _settings(tmp_path, packs=[str(bundle)], require_signed_packs=True, trusted_pack_keys=[trusted])
    with pytest.raises(BundleError) as caught:
        Governance.from_config(environ={}, **settings)
    assert str(caught.value) == f"bundle `{bundle}`: `baseline.irgov.yaml` does not match its digest in the manifest"
    config = tmp_path / "irgov.yaml"
    config.write_text(json.dumps({**settings, "api_keys": []}), "utf-8")
    result = CliRunner().invoke(main, ["serve", "--config", str(config)])
    assert result.exit_code == 1
    assert result.output.strip() == (f"irgov: error: cannot start: bundle `{bundle}`: `baseline.irgov.yaml` "
                                     "does not match its digest in the manifest")


def test_unsigned_packs_are_refused_when_required(tmp_path: Path, signed_bundle: tuple[Path, str, Path]) -> None:
    _, trusted, _ = signed_bundle
    folder = copy_pack_folder(tmp_path / "plain")
    unsigned = tmp_path / "unsigned.tar.gz"
    build_bundle(folder, unsigned)
    for source, message in ((unsigned, f"bundle `{unsigned}` is not signed"),
                            (folder, f"rule pack source `{folder}` is not a signed bundle and "
                                     "`require_signed_packs` is on")):
        with pytest.raises(BundleError) as caught:
            Governance.from_config(environ={}, **_settings(tmp_path, packs=[str(source)], require_signed_packs=True,
                                                           trusted_pack_keys=[trusted]))
        assert str(caught.value) == message
    with pytest.raises(ConfigError, match="`require_signed_packs` is on but `trusted_pack_keys` names no key"):
        Governance.from_config(environ={}, **_settings(tmp_path, packs=[str(folder)], require_signed_packs=True))


def test_a_tampered_or_unsigned_bundle_is_refused_at_reload(kernel: Governance, tmp_path: Path,
                                                            signed_bundle: tuple[Path, str, Path]) -> None:
    bundle, _, key = signed_bundle
    good = kernel.pack_status()["digest"]
    pristine = bundle.read_bytes()
    _tamper(bundle)
    result = kernel.reload_packs(by="ops")
    assert not result.ok and result.error == (f"bundle `{bundle}`: `baseline.irgov.yaml` does not match its "
                                              "digest in the manifest")
    assert kernel.pack_status()["digest"] == good
    assert kernel.pack_status()["last_reload_error"]["error"] == result.error
    assert kernel.health()["packs"]["last_reload_error"] == result.error
    # Rebuilt from a changed folder but not signed: refused too.
    folder = copy_pack_folder(tmp_path / "next")
    (folder / "baseline.irgov.yaml").write_text(
        (folder / "baseline.irgov.yaml").read_text("utf-8").replace('version: "1.0.0"', 'version: "1.0.1"'), "utf-8")
    build_bundle(folder, bundle)
    assert kernel.reload_packs(by="ops").error == f"bundle `{bundle}` is not signed"
    # Signed: in force.
    sign_bundle(bundle, load_private_key(key))
    result = kernel.reload_packs(by="ops")
    assert result.ok and result.changed and kernel.pack_status()["digest"] != good
    assert kernel.pack_status()["last_reload_error"] is None
    assert pristine != bundle.read_bytes()


def test_the_decision_log_records_each_decision_with_its_ir(tmp_path: Path) -> None:
    log = tmp_path / "log" / "decisions.jsonl"
    with Governance.from_config(environ={}, **_settings(tmp_path, decision_log=str(log))) as gov:
        decision = gov.validate(IR, submitted_by="pipeline")
        gov.validate(b"{not json", submitted_by="pipeline")
        status = gov.pack_status()
    lines = [json.loads(x) for x in log.read_text("utf-8").splitlines()]
    assert [line["decision"]["status"] for line in lines] == [decision.status, "REJECT"]
    first = lines[0]
    assert first["decision"] == decision.to_dict() and first["submitted_by"] == "pipeline"
    assert first["packs_digest"] == status["digest"] and first["redact"] == "params"
    assert first["ir"]["steps"][0]["params"] == {"ttl": "<redacted>"}
    assert lines[1]["ir"] is None
    assert status["decision_log"] == {"path": str(log), "redact": "params", "written": 2, "failed": 0}


def test_a_wrong_redaction_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="`decision_log_redact` must be one of"):
        Governance.from_config(environ={}, **_settings(tmp_path, decision_log=str(tmp_path / "d.jsonl"),
                                                       decision_log_redact="everything"))


def test_shadow_packs_diverge_without_being_enforced(tmp_path: Path) -> None:
    candidate = copy_pack_folder(tmp_path / "candidate")
    (candidate / "freeze.irgov.yaml").write_text(
        "apiVersion: irgov.dev/v1\nkind: RulePack\nmetadata: {name: freeze, version: '1'}\nrules:\n"
        "  - id: freeze-dns\n    when: step.action == \"dns.update_records\"\n"
        "    violation: {code: FROZEN, message: dns is frozen}\n", "utf-8")
    log = tmp_path / "decisions.jsonl"
    with Governance.from_config(environ={}, **_settings(tmp_path, shadow_packs=[str(candidate)],
                                                        decision_log=str(log))) as gov:
        assert gov.validate(IR).status == "ESCALATE"  # the active set decides
        other = {**IR, "steps": [{**IR["steps"][0], "action": "dns.create_zone"}]}  # type: ignore[dict-item]
        gov.validate(other)
        shadow = gov.pack_status()["shadow"]
    assert shadow["decisions"] == 2 and shadow["divergences"] == 1
    assert {p["name"] for p in shadow["packs"]} == {"baseline", "freeze"}
    first = json.loads(log.read_text("utf-8").splitlines()[0])
    assert first["shadow"]["diverged"] is True and first["shadow"]["status"] == "REJECT"
    assert first["shadow"]["violations"] == ["FROZEN"]
