"""Signed pack bundles: a folder of packs (and their policy tests) as one `.tar.gz`, with a
manifest of file digests and Ed25519 signatures over that manifest.

A bundle holds the folder's files, `.manifest.json` (`format`, and each file's path, size and
`sha256:` digest) and, once signed, `.signatures.json` (one entry per signing key: key id and
signature over the RFC 8785 canonical bytes of the manifest). Several signatures let a bundle
be trusted by hosts on the old and the new key while keys rotate.

Reading is defensive: only regular files with relative, normalised names, bounded in number
and size, are accepted; nothing is ever extracted to disk by reading. Every refusal is a
`BundleError` naming the bundle file in one line.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import BundleError, IRInputError
from ..hashing import canonical_bytes, digest_bytes
from ..strict_json import loads_strict

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_SUFFIXES",
    "MANIFEST_NAME",
    "SIGNATURES_NAME",
    "Bundle",
    "Signature",
    "build_bundle",
    "generate_key_pair",
    "is_bundle_path",
    "key_id",
    "load_private_key",
    "load_public_key",
    "load_public_keys",
    "public_key_text",
    "read_bundle",
    "sign_bundle",
    "verify_bundle",
]

BUNDLE_FORMAT = "irgov.dev/bundle/v1"
BUNDLE_SUFFIXES = (".tar.gz", ".tgz")
MANIFEST_NAME = ".manifest.json"
SIGNATURES_NAME = ".signatures.json"
SIGNATURE_ALGORITHM = "ed25519"
MAX_BUNDLE_FILES = 1000
MAX_BUNDLE_BYTES = 64 * 1024 * 1024  # uncompressed, all members together
RAW_KEY_PREFIX = "ed25519:"


def is_bundle_path(path: str | os.PathLike[str]) -> bool:
    return str(path).endswith(BUNDLE_SUFFIXES)


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short stable name of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _raw_public(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return RAW_KEY_PREFIX + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Signature:
    keyid: str
    signature: bytes

    def to_dict(self) -> dict[str, str]:
        return {"keyid": self.keyid, "algorithm": SIGNATURE_ALGORITHM,
                "signature": base64.b64encode(self.signature).decode("ascii")}


@dataclass(frozen=True)
class Bundle:
    """A bundle read into memory: its manifest, its files (path -> bytes) and its signatures."""

    file: str
    manifest: Mapping[str, Any]
    files: Mapping[str, bytes]
    signatures: tuple[Signature, ...]

    @property
    def digest(self) -> str:
        """`sha256:` of the manifest's canonical bytes: names the content whatever the signatures."""
        return digest_bytes(canonical_bytes(dict(self.manifest)))

    def pack_files(self) -> list[tuple[str, bytes]]:
        from .pack import PACK_SUFFIX

        return [(p, d) for p, d in sorted(self.files.items()) if p.endswith(PACK_SUFFIX)]

    def extract(self, directory: str | os.PathLike[str]) -> None:
        """Write the files (names were checked on reading) under `directory`."""
        root = Path(directory)
        for name, data in self.files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


def _manifest_for(files: Mapping[str, bytes]) -> dict[str, Any]:
    return {"format": BUNDLE_FORMAT,
            "files": [{"path": p, "size": len(d), "digest": digest_bytes(d)} for p, d in sorted(files.items())]}


def _collect(directory: Path) -> dict[str, bytes]:
    if not directory.is_dir():
        raise BundleError(f"`{directory}` is not a directory")
    files: dict[str, bytes] = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue  # editor files, `.git`, and the bundle's own metadata names
        if path.is_symlink():
            raise BundleError(f"`{path}` is a symbolic link: a bundle holds regular files only")
        if path.is_file():
            files[relative.as_posix()] = path.read_bytes()
    if not files:
        raise BundleError(f"`{directory}` holds no files to bundle")
    if len(files) > MAX_BUNDLE_FILES:
        raise BundleError(f"`{directory}` holds more than {MAX_BUNDLE_FILES} files")
    return files


def _write(path: Path, members: Mapping[str, bytes]) -> None:
    """Write a reproducible tar.gz (fixed times, owners and modes), atomically."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".bundle-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _json(data: Any) -> bytes:
    return canonical_bytes(data) + b"\n"


def build_bundle(directory: str | os.PathLike[str], output: str | os.PathLike[str]) -> Bundle:
    """Bundle every regular file under `directory` (hidden names skipped) with its manifest."""
    files = _collect(Path(directory))
    manifest = _manifest_for(files)
    _write(Path(output), {MANIFEST_NAME: _json(manifest), **files})
    return Bundle(str(output), manifest, files, ())


def _safe_name(bundle: str, name: str) -> str:
    pure = PurePosixPath(name)
    if (not name or name.startswith("/") or "\\" in name or any(p in ("..", "") for p in name.split("/"))
            or pure.as_posix() != name):
        raise BundleError(f"bundle `{bundle}`: member `{name}` has an unsafe name", bundle)
    return name


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read a bundle into memory, refusing anything but regular files with safe names; the
    manifest must list exactly the files present, each with its digest."""
    name = str(path)
    members: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(name, mode="r:gz") as archive:
            for info in archive:
                member = _safe_name(name, info.name)
                if not info.isreg():
                    raise BundleError(f"bundle `{name}`: member `{member}` is not a regular file", name)
                if member in members:
                    raise BundleError(f"bundle `{name}`: member `{member}` appears twice", name)
                if len(members) >= MAX_BUNDLE_FILES + 2:
                    raise BundleError(f"bundle `{name}` holds more than {MAX_BUNDLE_FILES} files", name)
                total += info.size
                if total > MAX_BUNDLE_BYTES:
                    raise BundleError(f"bundle `{name}` exceeds {MAX_BUNDLE_BYTES} bytes once uncompressed", name)
                extracted = archive.extractfile(info)
                members[member] = extracted.read() if extracted is not None else b""
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc).lower() or type(exc).__name__
        raise BundleError(f"cannot read bundle `{name}`: {reason}", name) from None
    except (tarfile.TarError, EOFError, gzip.BadGzipFile) as exc:
        raise BundleError(f"bundle `{name}` is not a valid tar.gz archive: {str(exc).lower()}", name) from None
    manifest = _parse_manifest(name, members.pop(MANIFEST_NAME, None))
    signatures = _parse_signatures(name, members.pop(SIGNATURES_NAME, None))
    listed = {entry["path"]: entry for entry in manifest["files"]}
    for member, data in sorted(members.items()):
        entry = listed.get(member)
        if entry is None:
            raise BundleError(f"bundle `{name}`: `{member}` is not in the manifest", name)
        if digest_bytes(data) != entry["digest"] or len(data) != entry["size"]:
            raise BundleError(f"bundle `{name}`: `{member}` does not match its digest in the manifest", name)
    missing = sorted(set(listed) - set(members))
    if missing:
        raise BundleError(f"bundle `{name}`: `{missing[0]}` is in the manifest but not in the bundle", name)
    return Bundle(name, manifest, members, signatures)


def _load_json(bundle: str, what: str, data: bytes) -> Any:
    try:
        return loads_strict(data, max_bytes=MAX_BUNDLE_BYTES)
    except IRInputError as exc:
        raise BundleError(f"bundle `{bundle}`: `{what}` is not valid json: {exc}", bundle) from None


def _parse_manifest(bundle: str, data: bytes | None) -> dict[str, Any]:
    if data is None:
        raise BundleError(f"bundle `{bundle}` has no `{MANIFEST_NAME}`: build it with `irgov bundle build`", bundle)
    manifest = _load_json(bundle, MANIFEST_NAME, data)
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"bundle `{bundle}`: `{MANIFEST_NAME}` is not an `{BUNDLE_FORMAT}` manifest", bundle)
    files = manifest.get("files")
    if set(manifest) != {"format", "files"} or not isinstance(files, list):
        raise BundleError(f"bundle `{bundle}`: `{MANIFEST_NAME}` must hold exactly `format` and `files`", bundle)
    seen: set[str] = set()
    for entry in files:
        if (not isinstance(entry, dict) or set(entry) != {"path", "size", "digest"}
                or not isinstance(entry["path"], str) or not isinstance(entry["digest"], str)
                or not isinstance(entry["size"], int) or isinstance(entry["size"], bool)):
            raise BundleError(f"bundle `{bundle}`: `{MANIFEST_NAME}` has a malformed file entry", bundle)
        _safe_name(bundle, entry["path"])
        if entry["path"] in seen or entry["path"] in (MANIFEST_NAME, SIGNATURES_NAME):
            raise BundleError(f"bundle `{bundle}`: `{MANIFEST_NAME}` lists `{entry['path']}` wrongly", bundle)
        seen.add(entry["path"])
        if not entry["digest"].startswith("sha256:"):
            raise BundleError(f"bundle `{bundle}`: `{entry['path']}` has a digest that is not `sha256:`", bundle)
    return manifest


def _parse_signatures(bundle: str, data: bytes | None) -> tuple[Signature, ...]:
    if data is None:
        return ()
    raw = _load_json(bundle, SIGNATURES_NAME, data)
    entries = raw.get("signatures") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise BundleError(f"bundle `{bundle}`: `{SIGNATURES_NAME}` must hold a `signatures` list", bundle)
    out: list[Signature] = []
    for entry in entries:
        if (not isinstance(entry, dict) or entry.get("algorithm") != SIGNATURE_ALGORITHM
                or not isinstance(entry.get("keyid"), str) or not isinstance(entry.get("signature"), str)):
            raise BundleError(f"bundle `{bundle}`: `{SIGNATURES_NAME}` has a malformed entry", bundle)
        try:
            signature = base64.b64decode(entry["signature"], validate=True)
        except ValueError:
            raise BundleError(f"bundle `{bundle}`: the signature of key `{entry['keyid']}` is not base64", bundle) from None
        out.append(Signature(entry["keyid"], signature))
    return tuple(out)


def sign_bundle(path: str | os.PathLike[str], private_key: Ed25519PrivateKey) -> Bundle:
    """Add (or replace) the signature of `private_key` over the manifest; other keys'
    signatures are kept, so a bundle can carry the old and the new key during a rotation."""
    bundle = read_bundle(path)
    public = private_key.public_key()
    kid = key_id(public)
    signature = Signature(kid, private_key.sign(canonical_bytes(dict(bundle.manifest))))
    signatures = (*(s for s in bundle.signatures if s.keyid != kid), signature)
    members = {MANIFEST_NAME: _json(dict(bundle.manifest)),
               SIGNATURES_NAME: _json({"signatures": [s.to_dict() for s in signatures]}),
               **dict(sorted(bundle.files.items()))}
    _write(Path(path), members)
    return Bundle(bundle.file, bundle.manifest, bundle.files, signatures)


def verify_bundle(bundle: Bundle, trusted: Sequence[Ed25519PublicKey]) -> str:
    """The key id of a trusted key whose signature over the manifest holds. A signature by a
    trusted key that does not verify means tampering: refused even if another one holds."""
    if not bundle.signatures:
        raise BundleError(f"bundle `{bundle.file}` is not signed", bundle.file)
    keys = {key_id(k): k for k in trusted}
    message = canonical_bytes(dict(bundle.manifest))
    good: str | None = None
    for signature in bundle.signatures:
        key = keys.get(signature.keyid)
        if key is None:
            continue
        try:
            key.verify(signature.signature, message)
        except InvalidSignature:
            raise BundleError(f"bundle `{bundle.file}`: the signature of key `{signature.keyid}` does not "
                              "match its manifest", bundle.file) from None
        good = good or signature.keyid
    if good is None:
        signers = ", ".join(f"`{s.keyid}`" for s in bundle.signatures)
        raise BundleError(f"bundle `{bundle.file}` is signed by no trusted key (signed by {signers})", bundle.file)
    return good


def generate_key_pair(private_path: str | os.PathLike[str]) -> tuple[Path, Path, Ed25519PublicKey]:
    """Write a new private key (PEM, PKCS#8, mode 0600) and its public key beside it (`.pub`)."""
    private = Ed25519PrivateKey.generate()
    target = Path(private_path)
    public_path = target.with_name(target.name + ".pub")
    for existing in (target, public_path):
        if existing.exists():
            raise BundleError(f"`{existing}` already exists: choose another name or remove it")
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public = private.public_key()
    public_path.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo))
    return target, public_path, public


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read key `{path}`: {(exc.strerror or str(exc)).lower()}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise BundleError(f"`{path}` is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"`{path}` is not an ed25519 private key")
    return key


def load_public_key(reference: str) -> Ed25519PublicKey:
    """A trusted key: `ed25519:BASE64` (the raw 32 bytes, as `irgov bundle keygen` prints) or
    the path of a PEM public key file."""
    if reference.startswith(RAW_KEY_PREFIX):
        try:
            raw = base64.b64decode(reference[len(RAW_KEY_PREFIX):], validate=True)
            return Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            raise BundleError(f"`{reference}` is not a base64 ed25519 public key of 32 bytes") from None
    try:
        data = Path(reference).read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read public key `{reference}`: {(exc.strerror or str(exc)).lower()}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise BundleError(f"`{reference}` is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"`{reference}` is not an ed25519 public key")
    return key


def load_public_keys(references: Iterable[str]) -> tuple[Ed25519PublicKey, ...]:
    return tuple(load_public_key(r) for r in references)


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """The one-line form of a public key, for `trusted_pack_keys` and `IRGOV_TRUSTED_PACK_KEYS`."""
    return _raw_public(public_key)
