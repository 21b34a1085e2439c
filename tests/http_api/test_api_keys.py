"""Finding: a mistyped digest in `api_keys` silently became a plaintext key, so the real key got
401 and the configuration string itself worked as a credential. Anything that starts with
`sha256:` in any case and is not exactly a digest is now a start-up error."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from irgov_policy.cli import main
from irgov_policy.errors import ConfigError
from irgov_policy.http import create_app, hash_api_key
from irgov_policy.http.auth import ApiKeyAuth
from irgov_policy.kernel import Governance

from .conftest import settings

REAL_KEY = "the-real-key-of-ops-123"
DIGEST = hash_api_key(REAL_KEY)
MISTYPED = [
    "sha256:" + DIGEST[7:].upper(),  # upper-case hex
    DIGEST[:-1],  # 63 digits
    DIGEST + "0",  # 65 digits
    "SHA256:" + DIGEST[7:],  # upper-case prefix
    "Sha256:" + DIGEST[7:],
    "sha256:" + DIGEST[7:-1] + "g",  # not hex
    "sha256:" + "0" * 16,  # short, but long enough to pass as a plaintext key
]


@pytest.mark.parametrize("key", MISTYPED)
def test_a_mistyped_digest_is_refused_not_taken_as_the_key(key: str) -> None:
    with pytest.raises(ConfigError, match=r"^api key entry 1 \(`ops`\): a key starting with `sha256:` must be"):
        ApiKeyAuth([f"ops:admin:*:{key}"])


def test_the_exact_digest_still_works() -> None:
    auth = ApiKeyAuth([f"ops:admin:*:{DIGEST}"])
    assert auth.authenticate(f"Bearer {REAL_KEY}").name == "ops"


@pytest.mark.parametrize("key", MISTYPED[:1])
def test_a_mistyped_digest_stops_the_server_at_start_up(key: str, tmp_path: Path) -> None:
    gov = Governance.from_config(environ={}, **settings(tmp_path, api_keys=(f"ops:admin:*:{key}",)))
    try:
        with pytest.raises(ConfigError):
            create_app(governance=gov)
    finally:
        gov.close()
    result = CliRunner().invoke(main, ["serve", "--port", "0"], env={"IRGOV_API_KEYS": f"ops:admin:*:{key}",
                                                                   "IRGOV_APPROVAL_STORE": "memory://",
                                                                   "IRGOV_OUTBOX": "memory://"})
    assert result.exit_code == 1, result.output
    assert result.output.startswith("irgov: error: cannot start: api key entry 1 (`ops`): a key starting with")
    assert len(result.output.strip().splitlines()) == 1
