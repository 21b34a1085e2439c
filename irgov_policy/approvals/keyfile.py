"""The embedded default's approval key: generated once next to the SQLite store, then reused.

A deployment that configures `IRGOV_APPROVAL_KEY` (or a key file) never uses this. A shared store
(Redis) never gets a generated key: every host must be given the same one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from ..errors import ApprovalKeyError
from ..storage import StoreURL, make_private_folder
from .tokens import KeyRing, load_keyring

__all__ = ["default_key_file", "load_or_create_key_file"]

logger = logging.getLogger(__name__)


def default_key_file(store_url: str | StoreURL) -> Path:
    """Where the embedded default keeps its generated approval key: next to the SQLite store
    (`sqlite:///data/x.db` -> `data/approval.key`), else `.irgov/approval.key`."""
    address = StoreURL.parse(store_url, what="approval store")
    if address.scheme == "sqlite":
        return address.sqlite_path().parent / "approval.key"
    return Path(".irgov") / "approval.key"


def load_or_create_key_file(path: Path) -> KeyRing:
    """Read `path`, or create it once with a fresh random key (mode 0600).

    The key is written to a private temporary file and linked into place, which fails when the
    file already exists: two processes starting together end up sharing one key."""
    if not path.exists():
        try:
            _create_key_file(path)
        except OSError as exc:
            raise ApprovalKeyError(f"cannot create the approval key file `{path}`: "
                                   f"{(exc.strerror or str(exc)).lower()}") from None
    return load_keyring(key_file=path)


def _create_key_file(path: Path) -> None:
    make_private_folder(path.parent)
    ring = KeyRing.generate("k1")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("# irgov approval key, generated; keep it secret and back it up\n")
            handle.write(ring.to_text() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
            logger.info("generated a new approval key in %s", path)
        except FileExistsError:
            pass  # another process won the race: use its key
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
