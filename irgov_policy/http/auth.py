"""Who is calling: principals, roles, and the standalone API-key authenticator.

The router depends on one callable, `auth(request) -> Principal` (plain or async). A host such as
mission control passes its own (session, OIDC, mTLS, ...); standalone, `ApiKeyAuth` reads
`principal:role:tenant:key` entries (`IRGOV_API_KEYS` or `api_keys` in the configuration, `*`
as tenant for all tenants) and accepts `Authorization: Bearer KEY`. Keys are kept only as
SHA-256 digests; in the configuration file they may be written already hashed as
`principal:role:tenant:sha256:HEX` so the file holds no usable key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from fastapi import Request

from ..errors import ConfigError
from .problems import ProblemError

__all__ = ["ALL_TENANTS", "ApiKeyAuth", "Authenticator", "Principal", "Role", "hash_api_key"]

logger = logging.getLogger(__name__)

ALL_TENANTS = "*"
_HASHED = re.compile(r"sha256:[0-9a-f]{64}")
MIN_KEY_LENGTH = 16


class Role(StrEnum):
    SUBMITTER = "submitter"
    APPROVER = "approver"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `tenants` None means every tenant."""

    name: str
    role: Role
    tenants: frozenset[str] | None

    def can_access(self, tenant_id: str) -> bool:
        return self.tenants is None or tenant_id in self.tenants

    @property
    def only_tenant(self) -> str | None:
        """The tenant when the principal has exactly one, for defaults."""
        if self.tenants is not None and len(self.tenants) == 1:
            return next(iter(self.tenants))
        return None


Authenticator = Callable[[Request], "Principal | Awaitable[Principal]"]


def hash_api_key(key: str) -> str:
    """The form a key is stored in: `sha256:HEX`."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="irgov"'})


@dataclass(frozen=True)
class _Entry:
    digest: str
    principal: Principal


class ApiKeyAuth:
    """Bearer API keys. Several entries may name one principal (for example one per tenant);
    they must then agree on its role."""

    def __init__(self, entries: Iterable[str]) -> None:
        by_digest: dict[str, _Entry] = {}
        grouped: dict[str, tuple[Role, set[str] | None, list[str]]] = {}
        for position, raw in enumerate(entries, start=1):
            parts = raw.strip().split(":", 3)
            if len(parts) != 4 or not all(parts):
                raise ConfigError(f"api key entry {position} is not `principal:role:tenant:key`")
            name, role_text, tenant, key = parts
            try:
                role = Role(role_text)
            except ValueError:
                raise ConfigError(f"api key entry {position} (`{name}`): unknown role `{role_text}`: use "
                                  "`submitter`, `approver` or `admin`") from None
            if _HASHED.fullmatch(key):
                digest = key
            elif key[:7].lower() == "sha256:":
                # A mistyped digest must not silently become a plaintext key that the
                # configuration string itself would unlock.
                raise ConfigError(f"api key entry {position} (`{name}`): a key starting with `sha256:` must be "
                                  "`sha256:` and 64 lower-case hex digits")
            elif len(key) < MIN_KEY_LENGTH:
                raise ConfigError(f"api key entry {position} (`{name}`): the key must have at least "
                                  f"{MIN_KEY_LENGTH} characters")
            else:
                digest = hash_api_key(key)
            known = grouped.get(name)
            if known is not None and known[0] is not role:
                raise ConfigError(f"api key entry {position}: principal `{name}` has two roles")
            tenants: set[str] | None
            if tenant == ALL_TENANTS:
                tenants = None
            else:
                tenants = {tenant} if known is None or known[1] is None else {*known[1], tenant}
                if known is not None and known[1] is None:
                    tenants = None
            digests = [*(known[2] if known else []), digest]
            grouped[name] = (role, tenants, digests)
        for name, (role, tenants, digests) in grouped.items():
            principal = Principal(name, role, None if tenants is None else frozenset(tenants))
            for digest in digests:
                if digest in by_digest and by_digest[digest].principal.name != name:
                    raise ConfigError(f"one api key is configured for `{by_digest[digest].principal.name}` "
                                      f"and `{name}`")
                by_digest[digest] = _Entry(digest, principal)
        self._entries = list(by_digest.values())

    def __repr__(self) -> str:
        return f"ApiKeyAuth(principals={sorted({e.principal.name for e in self._entries})!r})"

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise _unauthorized("credentials are required: send `Authorization: Bearer KEY`")
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise _unauthorized("the authorization header must be `Bearer KEY`")
        digest = hash_api_key(key.strip())
        found: Principal | None = None
        # Every entry is compared, in constant time, so timing says nothing about which matched.
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry.principal
        if found is None:
            raise _unauthorized("the api key is not valid")
        return found

    def principal_for_digest(self, digest: str) -> Principal | None:
        """The principal whose key has this `sha256:HEX` digest, or None (a key removed since):
        lets a session opened with a key end when the key is withdrawn."""
        found: Principal | None = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry.principal
        return found

    def __call__(self, request: Request) -> Principal:
        return self.authenticate(request.headers.get("authorization"))
