"""The built-in hash backends: sha256 (default) and blake3."""

from __future__ import annotations

from ..hashing import Blake3Backend, Sha256Backend
from ..hookspecs import RegisterHashBackend, hookimpl


@hookimpl
def irgov_register_hash_backends(register: RegisterHashBackend) -> None:
    register(Sha256Backend())
    register(Blake3Backend())
