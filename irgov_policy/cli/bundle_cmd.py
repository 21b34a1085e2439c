"""`irgov bundle`: build, sign and verify pack bundles, and make their signing keys."""

from __future__ import annotations

import click

from ..config import load_config
from ..errors import ConfigError, PackLoadError
from ..policy.bundle import (
    build_bundle,
    generate_key_pair,
    key_id,
    load_private_key,
    load_public_keys,
    public_key_text,
    read_bundle,
    sign_bundle,
    verify_bundle,
)
from ..policy.sources import load_pack_sources
from ._common import echo_json, fail

__all__ = ["bundle_group"]


@click.group("bundle")
def bundle_group() -> None:
    """Signed pack bundles: a folder of packs as one verifiable `.tar.gz`."""


@bundle_group.command("keygen")
@click.argument("key_path", type=click.Path(dir_okay=False))
def keygen_command(key_path: str) -> None:
    """Make an Ed25519 key pair: KEY_PATH (private, mode 0600) and KEY_PATH.pub (public, PEM).

    Prints the key id and the one-line public key to put in `trusted_pack_keys`."""
    try:
        private_path, public_path, public = generate_key_pair(key_path)
    except (PackLoadError, OSError) as exc:
        fail(str(exc))
    click.echo(f"private key {private_path} (keep it secret)")
    click.echo(f"public key  {public_path}")
    click.echo(f"key id      {key_id(public)}")
    click.echo(f"trusted_pack_keys entry: {public_key_text(public)}")


@bundle_group.command("build")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="bundle file to write (.tar.gz)")
def build_command(directory: str, output: str) -> None:
    """Bundle every file under DIRECTORY (packs, policy tests, their IR files) with a manifest
    of their digests. The packs must load."""
    try:
        bundle = build_bundle(directory, output)
        packs = load_pack_sources([output])
    except PackLoadError as exc:
        fail(str(exc).replace("\n", "; "))
    click.echo(f"built {output}: {len(bundle.files)} files, {len(packs)} rule packs, manifest {bundle.digest}")


@bundle_group.command("sign")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False), help="private key (PEM)")
def sign_command(bundle_path: str, key_path: str) -> None:
    """Sign BUNDLE's manifest with KEY (other keys' signatures are kept, for key rotation)."""
    try:
        key = load_private_key(key_path)
        bundle = sign_bundle(bundle_path, key)
    except PackLoadError as exc:
        fail(str(exc))
    signers = ", ".join(f"`{s.keyid}`" for s in bundle.signatures)
    click.echo(f"signed {bundle_path} with key `{key_id(key.public_key())}` (signatures: {signers})")


@bundle_group.command("verify")
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option("--pubkey", "pubkeys", multiple=True, metavar="KEY",
              help="trusted public key: PEM file or `ed25519:BASE64` (repeatable; default `trusted_pack_keys`)")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_command(bundle_path: str, pubkeys: tuple[str, ...], output_format: str) -> None:
    """Check that BUNDLE's files match its manifest and that a trusted key signed the manifest.
    Exit 0 verified, 1 refused."""
    try:
        references = list(pubkeys) or list(load_config().trusted_pack_keys)
    except ConfigError as exc:
        fail(str(exc))
    if not references:
        fail("no trusted key: give `--pubkey` or set `trusted_pack_keys`")
    try:
        keys = load_public_keys(references)
        bundle = read_bundle(bundle_path)
        signer = verify_bundle(bundle, keys)
        packs = load_pack_sources([bundle_path])
    except PackLoadError as exc:
        fail(str(exc).replace("\n", "; "))
    if output_format == "json":
        echo_json({"bundle": bundle_path, "verified": True, "signed_by": signer, "manifest": bundle.digest,
                   "files": sorted(bundle.files), "packs": [p.to_dict() for p in packs]})
        return
    click.echo(f"verified {bundle_path}: signed by key `{signer}`, {len(bundle.files)} files, "
               f"{len(packs)} rule packs, manifest {bundle.digest}")
