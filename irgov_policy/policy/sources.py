"""Where packs come from: files, directories of `*.irgov.yaml`, and signed bundles.

With `require_signed_packs`, every configured source must be a bundle signed by a trusted key;
a plain file or directory is refused like a tampered bundle. Packs from installed code (the
shipped baseline, plugins' packs) are trusted as that code is, and are not subject to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import BundleError, ConfigError, PackLoadError, SourceProblem
from .bundle import Bundle, is_bundle_path, load_public_keys, read_bundle, verify_bundle
from .pack import PACK_SUFFIX, RulePack, load_pack, parse_pack

__all__ = ["PackTrust", "bundle_packs", "expand_pack_paths", "load_pack_sources", "read_trusted_bundle"]


@dataclass(frozen=True)
class PackTrust:
    """Which bundles may be loaded: with `keys`, a bundle must carry a valid signature by one of
    them; with `require_signed`, every source must be such a bundle."""

    require_signed: bool = False
    keys: tuple[Ed25519PublicKey, ...] = ()

    @classmethod
    def from_settings(cls, require_signed: bool, key_references: Sequence[str]) -> PackTrust:
        try:
            keys = load_public_keys(key_references)
        except BundleError as exc:
            raise ConfigError(f"`trusted_pack_keys`: {exc}") from None
        if require_signed and not keys:
            raise ConfigError("`require_signed_packs` is on but `trusted_pack_keys` names no key")
        return cls(require_signed, keys)


def read_trusted_bundle(path: str | Path, trust: PackTrust | None) -> Bundle:
    """Read a bundle (its files must match its manifest) and, when keys are trusted, verify it."""
    bundle = read_bundle(path)
    if trust is not None and (trust.keys or trust.require_signed):
        verify_bundle(bundle, trust.keys)
    return bundle


def expand_pack_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Pack files named by `paths`; a directory without packs is a load error (evaluating with
    no vocabulary would reject every IR, hiding a mistyped path behind plausible decisions)."""
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.rglob(f"*{PACK_SUFFIX}"))
            if not found:
                raise PackLoadError([SourceProblem(str(path), 1, 1,
                                                   f"no rule packs (`*{PACK_SUFFIX}`) in this directory")])
            files.extend(found)
        else:
            files.append(path)
    return files


def bundle_packs(bundle: Bundle) -> list[RulePack]:
    members = bundle.pack_files()
    if not members:
        raise BundleError(f"bundle `{bundle.file}` holds no rule packs (`*{PACK_SUFFIX}`)", bundle.file)
    return [parse_pack(data, f"{bundle.file}!/{name}") for name, data in members]


def load_pack_sources(paths: Iterable[str | Path], *, trust: PackTrust | None = None) -> list[RulePack]:
    """Load every pack of `paths` (files, directories, `.tar.gz` bundles) under `trust`."""
    packs: list[RulePack] = []
    for item in paths:
        if is_bundle_path(item):
            packs.extend(bundle_packs(read_trusted_bundle(item, trust)))
            continue
        if trust is not None and trust.require_signed:
            raise BundleError(f"rule pack source `{item}` is not a signed bundle and `require_signed_packs` "
                              "is on", str(item))
        packs.extend(load_pack(f) for f in expand_pack_paths([item]))
    return packs
