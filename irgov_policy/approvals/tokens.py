"""Approval tokens and the server keys that digest them.

A token is `irgap_` + 43 base62 characters (256 random bits) + 6 base62 characters of CRC32 over
everything before it. The fixed prefix lets secret scanners recognise a leaked token; the checksum
catches a mistyped token offline, before any store is asked. Stores never see a token: they keep
`HMAC-SHA256(server key, token)` and the id of the key that made it, so a stolen database cannot
be replayed and keys can rotate (a retired key stays in the ring until its tokens have expired).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ApprovalKeyError
from ..text_rules import TOKEN_PREFIX

__all__ = [
    "KEY_ENV_VAR",
    "TOKEN_PREFIX",
    "ApprovalKey",
    "ApprovalToken",
    "KeyRing",
    "is_well_formed_token",
    "load_keyring",
    "new_token",
]

logger = logging.getLogger(__name__)

KEY_ENV_VAR = "IRGOV_APPROVAL_KEY"
MIN_SECRET_BYTES = 32

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_LEN = 43  # 62**43 > 2**256
_CHECK_LEN = 6  # 62**6 > 2**32
_TOKEN_RE = re.compile(rf"{TOKEN_PREFIX}[0-9A-Za-z]{{{_BODY_LEN}}}[0-9A-Za-z]{{{_CHECK_LEN}}}")
_KID_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")


class ApprovalToken(str):
    """The raw token: a `str` whose repr never shows the secret, so a logged tuple or object
    holding it cannot leak it by accident. `str(token)` is the value to hand to the approver."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ApprovalToken('irgap_…<redacted>')"


def _base62(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, rest = divmod(value, 62)
        chars.append(_ALPHABET[rest])
    if value:
        raise ValueError("value does not fit the width")
    return "".join(reversed(chars))


def _unbase62(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + _ALPHABET.index(char)
    return value


def _checksum(head: str) -> str:
    return _base62(zlib.crc32(head.encode("ascii")), _CHECK_LEN)


def new_token() -> ApprovalToken:
    """A fresh token with 256 bits from the operating system's CSPRNG."""
    head = TOKEN_PREFIX + _base62(secrets.randbits(256), _BODY_LEN)
    return ApprovalToken(head + _checksum(head))


def is_well_formed_token(token: object) -> bool:
    """True when `token` has the prefix, the length, a body within 256 bits and a valid checksum."""
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        return False
    head, check = token[:-_CHECK_LEN], token[-_CHECK_LEN:]
    if _unbase62(head[len(TOKEN_PREFIX):]) >= 1 << 256:
        return False
    return hmac.compare_digest(_checksum(head), check)


@dataclass(frozen=True)
class ApprovalKey:
    """One HMAC key. The secret never appears in the repr."""

    kid: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not _KID_RE.fullmatch(self.kid):
            raise ApprovalKeyError(f"approval key id `{self.kid}` must match `[A-Za-z0-9_.-]{{1,32}}`")
        if not isinstance(self.secret, bytes) or len(self.secret) < MIN_SECRET_BYTES:
            raise ApprovalKeyError(
                f"approval key `{self.kid}` must have at least {MIN_SECRET_BYTES} bytes of secret"
            )

    def digest(self, token: str) -> str:
        return hmac.new(self.secret, token.encode("ascii"), hashlib.sha256).hexdigest()


class KeyRing:
    """The current key (new tokens) and the retired keys (still verify old tokens)."""

    def __init__(self, current: ApprovalKey, retired: Iterable[ApprovalKey] = ()) -> None:
        self.current = current
        self.retired = tuple(retired)
        kids = [k.kid for k in self.keys]
        if len(set(kids)) != len(kids):
            raise ApprovalKeyError("approval key ids must be unique: " + ", ".join(f"`{k}`" for k in kids))

    def __repr__(self) -> str:
        return f"KeyRing(current={self.current.kid!r}, retired={[k.kid for k in self.retired]!r})"

    @property
    def keys(self) -> tuple[ApprovalKey, ...]:
        return (self.current, *self.retired)

    def digest_current(self, token: str) -> tuple[str, str]:
        """`(kid, hex digest)` under the current key: what a store keeps for a new token."""
        return self.current.kid, self.current.digest(token)

    def candidate_digests(self, token: str) -> list[tuple[str, str]]:
        """`(kid, hex digest)` under every key, current first: one of them finds the record."""
        return [(k.kid, k.digest(token)) for k in self.keys]

    def matches(self, token: str, kid: str, digest: str) -> bool:
        """Constant-time check that `digest` is the token's digest under key `kid`."""
        for key in self.keys:
            if key.kid == kid:
                return hmac.compare_digest(key.digest(token), digest)
        return False

    @classmethod
    def generate(cls, kid: str = "k1") -> KeyRing:
        return cls(ApprovalKey(kid, secrets.token_bytes(MIN_SECRET_BYTES)))

    @classmethod
    def parse(cls, text: str, *, where: str = f"`{KEY_ENV_VAR}`") -> KeyRing:
        """Parse `kid:base64secret[,kid:base64secret...]`; the first key is the current one.
        Entries may also be separated by newlines; `#` starts a comment line (for key files)."""
        entries: list[str] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            entries.extend(part.strip() for part in line.split(",") if part.strip())
        if not entries:
            raise ApprovalKeyError(f"{where} holds no approval key: expected `kid:base64secret`")
        keys = []
        for position, entry in enumerate(entries, start=1):
            kid, sep, encoded = entry.partition(":")
            if not sep:
                raise ApprovalKeyError(f"{where}: key {position} is not `kid:base64secret`")
            try:
                secret = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise ApprovalKeyError(f"{where}: key `{kid.strip()}` is not valid base64") from None
            keys.append(ApprovalKey(kid.strip(), secret))
        return cls(keys[0], keys[1:])

    def to_text(self) -> str:
        return ",".join(f"{k.kid}:{base64.b64encode(k.secret).decode('ascii')}" for k in self.keys)


def load_keyring(*, key_file: str | os.PathLike[str] | None = None,
                 environ: Mapping[str, str] | None = None) -> KeyRing:
    """The key ring from `key_file` when given, else from `IRGOV_APPROVAL_KEY`."""
    if key_file is not None:
        path = Path(key_file)
        try:
            text = path.read_text("utf-8")
            mode = path.stat().st_mode
        except OSError as exc:
            reason = exc.strerror.lower() if exc.strerror else type(exc).__name__
            raise ApprovalKeyError(f"cannot read approval key file `{path}`: {reason}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning("approval key file %s is readable by group or others", path)
        return KeyRing.parse(text, where=f"`{path}`")
    env = os.environ if environ is None else environ
    configured = env.get(KEY_ENV_VAR)
    if not configured:
        raise ApprovalKeyError(
            f"no approval key: set `{KEY_ENV_VAR}` to `kid:base64secret` or pass a key file"
        )
    return KeyRing.parse(configured)
