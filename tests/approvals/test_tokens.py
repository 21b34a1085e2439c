"""Token format, checksum, HMAC keys and their rotation, and key configuration."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest

from irgov_policy.approvals import (
    KEY_ENV_VAR,
    ApprovalKey,
    ApprovalToken,
    KeyRing,
    is_well_formed_token,
    load_keyring,
    new_token,
)
from irgov_policy.errors import ApprovalKeyError

SECRET = base64.b64encode(b"s" * 32).decode()


def test_token_shape() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert isinstance(token, ApprovalToken)
        assert re.fullmatch(r"irgap_[0-9A-Za-z]{49}", token)
        assert is_well_formed_token(token)
        assert is_well_formed_token(str(token))


def test_checksum_catches_every_single_character_typo() -> None:
    token = str(new_token())
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for position in range(len("irgap_"), len(token)):
        for char in alphabet[:: 7]:
            if char != token[position]:
                typo = token[:position] + char + token[position + 1:]
                assert not is_well_formed_token(typo), (position, char)


@pytest.mark.parametrize("value", ["", "irgap_", "IRGAP_" + "a" * 49, "irgap_" + "a" * 48, "irgap_" + "a" * 50,
                                   "ghp_" + "a" * 51, "irgap_" + "-" * 49, None, 7, b"irgap_"])
def test_malformed_tokens(value: object) -> None:
    assert not is_well_formed_token(value)


def test_body_above_256_bits_is_refused() -> None:
    from irgov_policy.approvals.tokens import _checksum

    head = "irgap_" + "z" * 43  # 62**43 - 1 > 2**256
    assert not is_well_formed_token(head + _checksum(head))


def test_token_repr_is_redacted() -> None:
    token = new_token()
    assert str(token) not in repr(token) and str(token) not in repr((1, token)) and str(token) not in repr([token])
    assert f"{token}" == str(token)


def test_keyring_parse_and_rotation() -> None:
    ring = KeyRing.parse(f"new:{SECRET}, old:{base64.b64encode(b'o' * 40).decode()}")
    assert ring.current.kid == "new" and [k.kid for k in ring.retired] == ["old"]
    token = new_token()
    kid, digest = ring.digest_current(token)
    assert kid == "new" and len(digest) == 64 and str(token) not in digest
    assert ring.matches(token, "new", digest) and not ring.matches(token, "old", digest)
    assert not ring.matches(token, "missing", digest)
    assert [k for k, _ in ring.candidate_digests(token)] == ["new", "old"]
    assert SECRET not in repr(ring) and "73737373" not in repr(ring.current)
    assert KeyRing.parse(ring.to_text()).candidate_digests(token) == ring.candidate_digests(token)


@pytest.mark.parametrize("text, message", [
    ("", "holds no approval key"),
    ("nokid", "is not `kid:base64secret`"),
    ("k1:not base64!", "not valid base64"),
    (f"k1:{base64.b64encode(b'short').decode()}", "at least 32 bytes"),
    (f"bad kid:{SECRET}", "must match"),
    (f"k1:{SECRET},k1:{SECRET}", "must be unique"),
])
def test_keyring_refusals(text: str, message: str) -> None:
    with pytest.raises(ApprovalKeyError, match=message):
        KeyRing.parse(text)


def test_key_needs_bytes() -> None:
    with pytest.raises(ApprovalKeyError):
        ApprovalKey("k1", "x" * 40)  # type: ignore[arg-type]


def test_load_keyring_from_env_and_file(tmp_path: Path) -> None:
    ring = load_keyring(environ={KEY_ENV_VAR: f"k9:{SECRET}"})
    assert ring.current.kid == "k9"
    with pytest.raises(ApprovalKeyError, match=KEY_ENV_VAR):
        load_keyring(environ={})
    path = tmp_path / "approval.key"
    path.write_text(f"# rotated 2026-01-01\nk2:{SECRET}\nk1:{base64.b64encode(b'x' * 32).decode()}\n")
    os.chmod(path, 0o600)
    from_file = load_keyring(key_file=path, environ={})
    assert [k.kid for k in from_file.keys] == ["k2", "k1"]
    with pytest.raises(ApprovalKeyError, match="cannot read approval key file"):
        load_keyring(key_file=tmp_path / "missing.key")
