"""Sealing an approval token until its requester claims it, so that no person ever handles it.

A grant made to be claimed (the console's Approve) mints the token as any grant does, but nobody
sees it: it is sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the server's
approval key and kept beside its request, bound to that request and tenant by the associated
data, so a sealed value copied onto another request does not open. The requester's claim opens
it once and the store erases it in the same step. A sealed value names the key it was sealed
with, so tokens sealed before a key rotation open as long as the key is kept as a retired one.

Sealed text is `seal1:<kid>:<base64url(nonce || ciphertext)>`; it is never logged.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ApprovalKeyError
from .tokens import ApprovalKey, ApprovalToken, KeyRing, is_well_formed_token

__all__ = ["SEAL_PREFIX", "seal_token", "unseal_token"]

SEAL_PREFIX = "seal1"
_INFO = b"irgov approval token seal v1"
_NONCE_BYTES = 12


def _aead(key: ApprovalKey) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(key.secret))


def _bound_to(request_id: str, tenant_id: str) -> bytes:
    return f"{tenant_id}\0{request_id}".encode()


def seal_token(keyring: KeyRing, token: ApprovalToken, *, request_id: str, tenant_id: str) -> str:
    """The token sealed under the current key, for this request of this tenant only."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _aead(keyring.current).encrypt(nonce, str(token).encode("ascii"), _bound_to(request_id, tenant_id))
    return f"{SEAL_PREFIX}:{keyring.current.kid}:{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"


def unseal_token(keyring: KeyRing, sealed: str, *, request_id: str, tenant_id: str) -> ApprovalToken:
    """Open a sealed token; `ApprovalKeyError` (never naming the token) when it cannot be."""
    prefix, _, rest = sealed.partition(":")
    kid, _, body = rest.partition(":")
    if prefix != SEAL_PREFIX or not kid or not body:
        raise ApprovalKeyError(f"the sealed token of approval request `{request_id}` is not in a known format")
    key = next((k for k in keyring.keys if k.kid == kid), None)
    if key is None:
        raise ApprovalKeyError(f"the token of approval request `{request_id}` was sealed with key `{kid}`, "
                               "which the server no longer holds")
    try:
        raw = base64.urlsafe_b64decode(body.encode("ascii"))
        text = _aead(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _bound_to(request_id, tenant_id))
        token = text.decode("ascii")
    except (binascii.Error, ValueError, InvalidTag, UnicodeError):
        raise ApprovalKeyError(f"the sealed token of approval request `{request_id}` does not open with key "
                               f"`{kid}`") from None
    if not is_well_formed_token(token):
        raise ApprovalKeyError(f"the sealed token of approval request `{request_id}` is not a token")
    return ApprovalToken(token)
