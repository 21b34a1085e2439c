"""Canonical hashing: RFC 8785 bytes, swappable hash backends, `ALGO:HEX` digests.

Every digest says which algorithm made it. Verification refuses anything that is not exactly
`algo:lowercasehex` of the right length for a known algorithm inside the allowed set, so a
digest cannot be downgraded to a weaker or unknown algorithm by rewriting its prefix.

What is hashed (the canonicalisation rules, also in docs/getting-started.md "What is hashed"):
- the RFC 8785 bytes of the IR as the model read it: computed fields (`risk_tier`,
  `requires_approval`) never, `params` and `constraints` always (`{}` when absent), other
  optional fields only when sent, and `null` counts as not sent;
- `created_at` in one canonical UTC form, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (a naive value is UTC),
  so every spelling of one instant gives one hash;
- an integral number hashes as an integer (`5.0` like `5`); empty `labels` are left out.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import blake3 as _blake3
import rfc8785

from .errors import DigestError, HashBackendError
from .model import IR, Step

__all__ = [
    "DEFAULT_ALGORITHM",
    "DEFAULT_ALLOWED_ALGORITHMS",
    "Blake3Backend",
    "Digest",
    "HashBackend",
    "HashRegistry",
    "Sha256Backend",
    "canonical_bytes",
    "dag_hash",
    "default_registry",
    "digest_bytes",
    "digest_object",
    "ir_hash",
    "parse_digest",
    "step_hash",
    "verify_digest",
]

DEFAULT_ALGORITHM = "sha256"
DEFAULT_ALLOWED_ALGORITHMS = frozenset({"sha256", "blake3"})

_ALGORITHM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_DIGEST = re.compile(r"([a-z0-9][a-z0-9_-]{0,31}):([0-9a-f]+)")


@runtime_checkable
class HashBackend(Protocol):
    """A hash function. `name` is the digest prefix; `digest_size` is in bytes."""

    name: str
    digest_size: int

    def hexdigest(self, data: bytes) -> str: ...


class Sha256Backend:
    name = "sha256"
    digest_size = 32

    def hexdigest(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()


class Blake3Backend:
    name = "blake3"
    digest_size = 32

    def hexdigest(self, data: bytes) -> str:
        return str(_blake3.blake3(data).hexdigest())


class HashRegistry:
    """Hash backends by name. Built-ins register through the same plugin hook as third parties."""

    def __init__(self, backends: Iterable[HashBackend] = ()) -> None:
        self._backends: dict[str, HashBackend] = {}
        for backend in backends:
            self.register(backend)

    def register(self, backend: HashBackend) -> None:
        name = getattr(backend, "name", None)
        if not isinstance(name, str) or not _ALGORITHM_NAME.fullmatch(name):
            raise HashBackendError(f"hash backend name `{name}` must match `[a-z0-9][a-z0-9_-]*`")
        if name in self._backends:
            raise HashBackendError(f"hash backend `{name}` is registered twice")
        if not isinstance(getattr(backend, "digest_size", None), int) or backend.digest_size <= 0:
            raise HashBackendError(f"hash backend `{name}` has no positive integer `digest_size`")
        self._backends[name] = backend

    def get(self, name: str) -> HashBackend:
        try:
            return self._backends[name]
        except KeyError:
            known = ", ".join(f"`{n}`" for n in sorted(self._backends))
            raise HashBackendError(f"unknown hash algorithm `{name}`: known are {known}") from None

    def names(self) -> list[str]:
        return sorted(self._backends)

    def __contains__(self, name: object) -> bool:
        return name in self._backends


_DEFAULT_REGISTRY: HashRegistry | None = None


def default_registry() -> HashRegistry:
    """The registry built from the plugin manager: built-ins plus installed plugins."""
    global _DEFAULT_REGISTRY
    if _DEFAULT_REGISTRY is None:
        # Imported here: plugins registers the built-in backends defined in this module.
        from .plugins import collect_hash_backends

        _DEFAULT_REGISTRY = collect_hash_backends()
    return _DEFAULT_REGISTRY


def _registry(registry: HashRegistry | None) -> HashRegistry:
    return registry if registry is not None else default_registry()


_PLAIN, _FLOATS, _SLOW = 0, 1, 2
_FLOAT_MARKER = re.compile(r'"irgov-float-([0-9a-f]{32})-(\d+)"')
_MAX_SAFE = 2**53 - 1


def _scan(value: Any) -> int:
    """How `value` can be canonicalised: `_PLAIN`, `_FLOATS` or `_SLOW`.

    `json.dumps(sort_keys, compact, ensure_ascii=False)` already yields RFC 8785 for strings (same
    short escapes, lower-case `\\u00xx` for other controls, no escaping of non-ASCII), integers,
    booleans and null. It differs on floats (RFC 8785 uses the ECMAScript number format), handled
    by `_with_float_markers`, and on keys outside the Basic Multilingual Plane (RFC 8785 sorts by
    UTF-16 code units, Python by code points), left to the pure-Python `rfc8785` encoder. A
    property test checks that every path agrees with `rfc8785`."""
    verdict = _PLAIN
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            for key in node:
                if type(key) is not str or (not key.isascii() and any(ord(c) > 0xFFFF for c in key)):
                    return _SLOW
            stack.extend(node.values())
        elif kind is list or kind is tuple:
            stack.extend(node)
        elif kind is str or kind is bool or node is None:
            continue
        elif kind is int:
            if not -_MAX_SAFE <= node <= _MAX_SAFE:
                return _SLOW
        elif kind is float:
            if node != node or node in (math.inf, -math.inf):
                return _SLOW  # let rfc8785 refuse it with its own error
            verdict = _FLOATS
        else:
            return _SLOW
    return verdict


def _with_float_markers(node: Any, floats: list[float], marker: str) -> Any:
    """A copy of `node` with each float replaced by the string `marker + index`."""
    kind = type(node)
    if kind is float:
        floats.append(node)
        return f"{marker}{len(floats) - 1}"
    if kind is dict:
        return {k: _with_float_markers(v, floats, marker) for k, v in node.items()}
    if kind is list or kind is tuple:
        return [_with_float_markers(v, floats, marker) for v in node]
    return node


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical JSON of a JSON-compatible value."""
    verdict = _scan(value)
    if verdict == _PLAIN:
        return _dumps(value).encode("utf-8")
    if verdict == _FLOATS:
        # Floats are serialised by rfc8785 one by one and spliced in place of unguessable markers;
        # the count check makes a marker that somehow also occurs in the data fall back safely.
        nonce = secrets.token_hex(16)
        floats: list[float] = []
        text = _dumps(_with_float_markers(value, floats, f"irgov-float-{nonce}-"))
        rendered = [rfc8785.dumps(f).decode("ascii") for f in floats]
        replaced = 0

        def splice(match: re.Match[str]) -> str:
            nonlocal replaced
            if match.group(1) != nonce:
                return match.group(0)
            replaced += 1
            return rendered[int(match.group(2))]

        spliced = _FLOAT_MARKER.sub(splice, text)
        if replaced == len(floats):
            return spliced.encode("utf-8")
    return bytes(rfc8785.dumps(value))


def digest_bytes(data: bytes, algorithm: str = DEFAULT_ALGORITHM, *, registry: HashRegistry | None = None) -> str:
    backend = _registry(registry).get(algorithm)
    return f"{backend.name}:{backend.hexdigest(data)}"


def digest_object(value: Any, algorithm: str = DEFAULT_ALGORITHM, *, registry: HashRegistry | None = None) -> str:
    """`ALGO:HEX` of the canonical JSON of `value`."""
    return digest_bytes(canonical_bytes(value), algorithm, registry=registry)


def step_hash(step: Step | Mapping[str, Any], algorithm: str = DEFAULT_ALGORITHM, *,
              registry: HashRegistry | None = None) -> str:
    """Hash of one step; computed fields (`risk_tier`, `requires_approval`) never take part."""
    value = step.to_hashable() if isinstance(step, Step) else {
        k: v for k, v in step.items() if k not in ("risk_tier", "requires_approval")
    }
    return digest_object(value, algorithm, registry=registry)


def ir_hash(ir: IR, algorithm: str = DEFAULT_ALGORITHM, *, registry: HashRegistry | None = None) -> str:
    """Hash of a whole IR, over its canonical form without computed fields."""
    return digest_object(ir.to_hashable(), algorithm, registry=registry)


def dag_hash(pairs: Iterable[tuple[str, str]], algorithm: str = DEFAULT_ALGORITHM, *,
             registry: HashRegistry | None = None) -> str:
    """Hash over the (node id, step hash) pairs, sorted by id then hash."""
    ordered = sorted((str(i), str(h)) for i, h in pairs)
    return digest_object([[i, h] for i, h in ordered], algorithm, registry=registry)


@dataclass(frozen=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_digest(text: object, *, registry: HashRegistry | None = None) -> Digest:
    """Parse `ALGO:HEX` exactly: known algorithm, lower-case hex of the backend's length."""
    if not isinstance(text, str):
        raise DigestError(f"digest must be a string, not `{type(text).__name__}`")
    match = _DIGEST.fullmatch(text)
    if match is None:
        if ":" not in text:
            raise DigestError(f"digest `{text}` has no algorithm prefix: expected `ALGO:HEX`")
        raise DigestError(f"digest `{text}` is not `ALGO:HEX` in lower case without spaces")
    algorithm, hexpart = match.group(1), match.group(2)
    reg = _registry(registry)
    if algorithm not in reg:
        raise DigestError(f"digest `{text}` uses unknown algorithm `{algorithm}`")
    expected = reg.get(algorithm).digest_size * 2
    if len(hexpart) != expected:
        raise DigestError(
            f"digest `{text}` has {len(hexpart)} hex digits: `{algorithm}` needs {expected}"
        )
    return Digest(algorithm, hexpart)


def verify_digest(text: object, *, allowed: Iterable[str] = DEFAULT_ALLOWED_ALGORITHMS,
                  registry: HashRegistry | None = None) -> Digest:
    """`parse_digest`, then refuse any algorithm outside `allowed` (no downgrade)."""
    digest = parse_digest(text, registry=registry)
    allowed_set = frozenset(allowed)
    if digest.algorithm not in allowed_set:
        names = ", ".join(f"`{a}`" for a in sorted(allowed_set))
        raise DigestError(f"digest algorithm `{digest.algorithm}` is not allowed: allowed are {names}")
    return digest
