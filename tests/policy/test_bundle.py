"""Signed pack bundles: build, sign, verify, and refusal of anything tampered with or unsigned."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main
from irgov_policy.errors import BundleError, ConfigError
from irgov_policy.policy.bundle import (
    MANIFEST_NAME,
    build_bundle,
    generate_key_pair,
    key_id,
    load_private_key,
    load_public_key,
    public_key_text,
    read_bundle,
    sign_bundle,
    verify_bundle,
)
from irgov_policy.policy.evaluator import PolicyEngine
from irgov_policy.policy.sources import PackTrust, load_pack_sources

ROOT = Path(__file__).resolve().parents[2]
IR = {"tenant_id": "t1", "request_id": "r1", "steps": [
    {"action": "dns.update_records", "provider": "dns.cloudflare", "resource": "dns:example.com",
     "params": {}, "idempotency_key": "k1"}]}


@pytest.fixture
def signed(tmp_path: Path, pack_dir: Path) -> tuple[Path, Path]:
    """A bundle of the policies folder signed by a fresh key; returns (bundle, public key file)."""
    key, public, _ = generate_key_pair(tmp_path / "keys" / "signing")
    bundle = tmp_path / "packs.tar.gz"
    build_bundle(pack_dir, bundle)
    sign_bundle(bundle, load_private_key(key))
    return bundle, public


def _rewrite(bundle: Path, change: dict[str, bytes]) -> None:
    """Rewrite members of a bundle in place (what an attacker with write access could do)."""
    with tarfile.open(bundle, "r:gz") as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive}  # type: ignore[union-attr]
    members.update(change)
    with tarfile.open(bundle, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_build_sign_verify_round_trip(signed: tuple[Path, Path], pack_dir: Path) -> None:
    bundle_path, public = signed
    bundle = read_bundle(bundle_path)
    assert sorted(bundle.files) == sorted(p.relative_to(pack_dir).as_posix() for p in pack_dir.rglob("*")
                                          if p.is_file())
    key = load_public_key(str(public))
    assert verify_bundle(bundle, [key]) == key_id(key)
    # The one-line form printed by keygen is the same key.
    assert key_id(load_public_key(public_key_text(key))) == key_id(key)
    packs = load_pack_sources([bundle_path], trust=PackTrust(True, (key,)))
    assert [p.name for p in packs] == ["baseline"]
    assert packs[0].file == f"{bundle_path}!/baseline.irgov.yaml"
    # Same content, same digest as the pack loaded from its file.
    assert packs[0].digest == load_pack_sources([pack_dir / "baseline.irgov.yaml"])[0].digest


def test_build_is_reproducible(tmp_path: Path, pack_dir: Path) -> None:
    build_bundle(pack_dir, tmp_path / "a.tar.gz")
    build_bundle(pack_dir, tmp_path / "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def test_a_tampered_file_is_refused_in_one_line_naming_the_bundle(signed: tuple[Path, Path]) -> None:
    bundle_path, public = signed
    original = read_bundle(bundle_path).files["baseline.irgov.yaml"]
    _rewrite(bundle_path, {"baseline.irgov.yaml": original.replace(b"prod", b"qa")})
    key = load_public_key(str(public))
    with pytest.raises(BundleError) as caught:
        PolicyEngine.from_paths([bundle_path], trust=PackTrust(True, (key,)))
    message = str(caught.value)
    assert "\n" not in message
    assert message == f"bundle `{bundle_path}`: `baseline.irgov.yaml` does not match its digest in the manifest"


def test_a_rewritten_manifest_breaks_the_signature(signed: tuple[Path, Path]) -> None:
    bundle_path, public = signed
    bundle = read_bundle(bundle_path)
    pack = bundle.files["baseline.irgov.yaml"].replace(b"prod", b"qa")
    manifest = json.loads(json.dumps(dict(bundle.manifest)))
    from irgov_policy.hashing import digest_bytes

    for entry in manifest["files"]:
        if entry["path"] == "baseline.irgov.yaml":
            entry["digest"], entry["size"] = digest_bytes(pack), len(pack)
    _rewrite(bundle_path, {"baseline.irgov.yaml": pack, MANIFEST_NAME: json.dumps(manifest).encode()})
    key = load_public_key(str(public))
    with pytest.raises(BundleError, match=r"the signature of key `[0-9a-f]{16}` does not match its manifest"):
        load_pack_sources([bundle_path], trust=PackTrust(True, (key,)))
    # Without trusted keys the bundle is merely consistent: that is what `require_signed_packs` is for.
    assert load_pack_sources([bundle_path])


def test_extra_and_missing_members_are_refused(signed: tuple[Path, Path]) -> None:
    bundle_path, _ = signed
    _rewrite(bundle_path, {"evil.irgov.yaml": b"x: 1\n"})
    with pytest.raises(BundleError, match="`evil.irgov.yaml` is not in the manifest"):
        read_bundle(bundle_path)


def test_unsafe_member_names_are_refused(tmp_path: Path, signed: tuple[Path, Path]) -> None:
    bundle_path, _ = signed
    _rewrite(bundle_path, {"../escape.irgov.yaml": b"x: 1\n"})
    with pytest.raises(BundleError, match="member `../escape.irgov.yaml` has an unsafe name"):
        read_bundle(bundle_path)


def test_a_link_member_is_refused(tmp_path: Path, signed: tuple[Path, Path]) -> None:
    bundle_path, _ = signed
    with tarfile.open(bundle_path, "r:gz") as archive:
        members = [(m, archive.extractfile(m).read()) for m in archive]  # type: ignore[union-attr]
    with tarfile.open(bundle_path, "w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("passwd")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    with pytest.raises(BundleError, match="member `passwd` is not a regular file"):
        read_bundle(bundle_path)


def test_unsigned_bundles_and_plain_files_are_refused_when_signatures_are_required(
        tmp_path: Path, pack_dir: Path, signed: tuple[Path, Path]) -> None:
    _, public = signed
    trust = PackTrust(True, (load_public_key(str(public)),))
    unsigned = tmp_path / "unsigned.tar.gz"
    build_bundle(pack_dir, unsigned)
    with pytest.raises(BundleError, match=rf"^bundle `{unsigned}` is not signed$"):
        load_pack_sources([unsigned], trust=trust)
    with pytest.raises(BundleError, match="is not a signed bundle and `require_signed_packs` is on"):
        load_pack_sources([pack_dir], trust=trust)


def test_a_bundle_signed_by_an_unknown_key_is_refused(tmp_path: Path, signed: tuple[Path, Path]) -> None:
    bundle_path, _ = signed
    _, other, _ = generate_key_pair(tmp_path / "other")
    with pytest.raises(BundleError, match="is signed by no trusted key"):
        load_pack_sources([bundle_path], trust=PackTrust(True, (load_public_key(str(other)),)))


def test_key_rotation_two_signatures_each_key_verifies(tmp_path: Path, signed: tuple[Path, Path]) -> None:
    bundle_path, old_public = signed
    new_key, new_public, _ = generate_key_pair(tmp_path / "new")
    sign_bundle(bundle_path, load_private_key(new_key))
    assert len(read_bundle(bundle_path).signatures) == 2
    for public in (old_public, new_public):
        assert load_pack_sources([bundle_path], trust=PackTrust(True, (load_public_key(str(public)),)))
    # Signing again with the same key replaces its signature instead of piling them up.
    sign_bundle(bundle_path, load_private_key(new_key))
    assert len(read_bundle(bundle_path).signatures) == 2


def test_require_signed_needs_a_key() -> None:
    with pytest.raises(ConfigError, match="`require_signed_packs` is on but `trusted_pack_keys` names no key"):
        PackTrust.from_settings(True, ())
    with pytest.raises(ConfigError, match="`trusted_pack_keys`: `ed25519:abc` is not a base64 ed25519 public key"):
        PackTrust.from_settings(True, ("ed25519:abc",))


def test_cli_keygen_build_sign_verify(tmp_path: Path, pack_dir: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "k"
    result = runner.invoke(main, ["bundle", "keygen", str(key)])
    assert result.exit_code == 0, result.output
    assert (key.stat().st_mode & 0o777) == 0o600
    line = next(x for x in result.output.splitlines() if x.startswith("trusted_pack_keys entry: "))
    raw_key = line.split(": ", 1)[1]
    bundle = tmp_path / "b.tar.gz"
    result = runner.invoke(main, ["bundle", "build", str(pack_dir), "-o", str(bundle)])
    assert result.exit_code == 0, result.output
    assert "1 rule packs" in result.output
    result = runner.invoke(main, ["bundle", "verify", "--pubkey", raw_key, str(bundle)])
    assert result.exit_code == 1
    assert result.output.strip() == f"irgov: error: bundle `{bundle}` is not signed"
    assert runner.invoke(main, ["bundle", "sign", "--key", str(key), str(bundle)]).exit_code == 0
    result = runner.invoke(main, ["bundle", "verify", "--pubkey", raw_key, "--format", "json", str(bundle)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["verified"] is True and report["packs"][0]["name"] == "baseline"
    _rewrite(bundle, {"baseline.irgov-test.yaml": b"tampered"})
    result = runner.invoke(main, ["bundle", "verify", "--pubkey", str(key) + ".pub", str(bundle)])
    assert result.exit_code == 1
    assert result.output.strip() == (f"irgov: error: bundle `{bundle}`: `baseline.irgov-test.yaml` does not "
                                     "match its digest in the manifest")


def test_build_refuses_a_folder_whose_packs_do_not_load(tmp_path: Path, pack_dir: Path) -> None:
    (pack_dir / "broken.irgov.yaml").write_text("apiVersion: irgov.dev/v1\nkind: RulePack\n")
    result = CliRunner().invoke(main, ["bundle", "build", str(pack_dir), "-o", str(tmp_path / "b.tar.gz")])
    assert result.exit_code == 1
    assert "broken.irgov.yaml:" in result.output and "Traceback" not in result.output


def test_engine_decides_the_same_from_a_bundle(signed: tuple[Path, Path], pack_dir: Path) -> None:
    bundle_path, public = signed
    trust = PackTrust(True, (load_public_key(str(public)),))
    from_bundle = PolicyEngine.from_paths([bundle_path], trust=trust).evaluate(IR)
    from_files = PolicyEngine.from_paths([pack_dir]).evaluate(IR)
    assert (from_bundle.status, from_bundle.risk_tier) == (from_files.status, from_files.risk_tier)
    assert from_bundle.to_dict()["packs"] == from_files.to_dict()["packs"]
