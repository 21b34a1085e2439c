"""The built-in hash backends: sha256 (default) and blake3."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..hashing import Blake3Backend, Sha256Backend
from ..hookspecs import hookimpl


@hookimpl
def irgov_register_hash_backends(register: Callable[[Any], None]) -> None:
    register(Sha256Backend())
    register(Blake3Backend())
