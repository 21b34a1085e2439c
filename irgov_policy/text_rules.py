"""The rules for short text a caller hands the kernel: names, reasons, tenants and ids.

One module, so the kernel, the approval service, the ledger and the HTTP layer refuse the same
values with the same words. A value the kernel accepts must be one every service below it accepts
too, or a request could be taken that can never be granted.

- Lengths: `tenant_id` 1-100 characters, principals (who asked, granted, consumed, revoked) and
  ids 1-200, reasons 1-2000, digests at most 200.
- No control characters (U+0000-U+001F, U+007F): these values reach logs, terminals and events.
- Valid Unicode: no lone surrogate, so every value can be stored, hashed and published.
- No approval token: text holding `irgap_` is refused without being echoed, because a token
  pasted into the wrong field would otherwise be logged and published. The same holds for every
  string of an IR; and every message, problem detail and event passes through `redact_tokens`,
  so a token that reaches one anyway is shown as `irgap_<redacted>`.
- Ids: an approval request is `areq_` + 32 hex digits, an approval `appr_` + 32 hex digits.
- Idempotency keys (of a consume, `Idempotency-Key` over HTTP): 1-200 visible ASCII characters
  (`!` to `~`: a UUID, a ULID, a job id), never holding a token; they are stored with the consume
  and echoed in refusals.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from .errors import ApprovalError

__all__ = [
    "APPROVAL_ID",
    "APPROVAL_ID_PREFIX",
    "MAX_DIGEST_LENGTH",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "MAX_PRINCIPAL_LENGTH",
    "MAX_REASON_LENGTH",
    "MAX_TENANT_LENGTH",
    "REDACTED_TOKEN",
    "REQUEST_ID",
    "REQUEST_ID_PATTERN",
    "REQUEST_ID_PREFIX",
    "TEXT_PATTERN",
    "TOKEN_PREFIX",
    "check_idempotency_key",
    "check_text",
    "has_control_characters",
    "holds_token",
    "is_blank",
    "is_encodable",
    "new_request_id",
    "redact_tokens",
    "redact_tokens_in",
    "token_pointers",
]

MAX_TENANT_LENGTH = 100
MAX_PRINCIPAL_LENGTH = 200
MAX_REASON_LENGTH = 2000
MAX_DIGEST_LENGTH = 200
MAX_IDEMPOTENCY_KEY_LENGTH = 200

#: every approval token starts with it, so secret scanners and these rules recognise one.
TOKEN_PREFIX = "irgap_"
REQUEST_ID_PREFIX = "areq_"
APPROVAL_ID_PREFIX = "appr_"
REQUEST_ID = re.compile(REQUEST_ID_PREFIX + "[0-9a-f]{32}")
APPROVAL_ID = re.compile(APPROVAL_ID_PREFIX + "[0-9a-f]{32}")
#: the same rules as JSON Schema patterns, for the HTTP layer's models and paths.
REQUEST_ID_PATTERN = f"^{REQUEST_ID.pattern}$"
TEXT_PATTERN = r"^[^\u0000-\u001f\u007f]*$"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IDEMPOTENCY_KEY = re.compile(r"[!-~]+")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def is_encodable(value: str) -> bool:
    """Whether `value` encodes as UTF-8: not so with a lone surrogate, as a JSON escape or a
    command-line argument of invalid UTF-8 (which Python carries as surrogates) can hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_blank(value: str) -> bool:
    """Empty or whitespace only: such a tenant, action or resource names nothing."""
    return not value.strip()


def holds_token(value: str) -> bool:
    """Whether `value` looks like it holds an approval token (its prefix is enough)."""
    return TOKEN_PREFIX in value


_TOKEN_SHAPED = re.compile(re.escape(TOKEN_PREFIX) + "[0-9A-Za-z]*")
REDACTED_TOKEN = TOKEN_PREFIX + "<redacted>"


def redact_tokens(text: str) -> str:
    """`text` with every token-shaped substring replaced, for messages, problems and events."""
    return _TOKEN_SHAPED.sub(REDACTED_TOKEN, text) if TOKEN_PREFIX in text else text


def redact_tokens_in(value: Any) -> Any:
    """`value` (JSON-like: mappings, lists, strings) with `redact_tokens` applied to every string,
    keys included; other values unchanged."""
    if isinstance(value, str):
        return redact_tokens(value)
    if isinstance(value, Mapping):
        return {redact_tokens_in(k): redact_tokens_in(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tokens_in(v) for v in value]
    return value


def token_pointers(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """The paths of every string (or key) in a JSON-like value that holds a token."""
    if isinstance(value, str):
        return [path] if TOKEN_PREFIX in value else []
    found: list[tuple[str | int, ...]] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            found += [(*path, k)] if isinstance(k, str) and TOKEN_PREFIX in k else token_pointers(v, (*path, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found += token_pointers(v, (*path, i))
    return found


def check_text(name: str, value: object, *, max_length: int, optional: bool = False) -> str | None:
    """`value` if it is acceptable text for the argument `name`, None if it is None and
    `optional`; otherwise `ApprovalError` naming the argument (never echoing a token)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ApprovalError(f"`{name}` must be a string, not `{type(value).__name__}`")
    if not value or len(value) > max_length:
        raise ApprovalError(f"`{name}` must have 1 to {max_length} characters")
    if has_control_characters(value):
        raise ApprovalError(f"`{name}` must not contain control characters")
    if not is_encodable(value):
        raise ApprovalError(f"`{name}` must be valid unicode text (it holds a lone surrogate or undecodable bytes)")
    if holds_token(value):
        raise ApprovalError(f"`{name}` holds an approval token")
    return value


def check_idempotency_key(value: object, *, name: str = "idempotency_key") -> str | None:
    """`value` if it is an acceptable idempotency key, None if it is None; otherwise
    `ApprovalError` naming the argument (never echoing a token)."""
    key = check_text(name, value, max_length=MAX_IDEMPOTENCY_KEY_LENGTH, optional=True)
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ApprovalError(f"`{name}` must be visible ascii characters (`!` to `~`), without spaces")
    return key


def new_request_id() -> str:
    return REQUEST_ID_PREFIX + secrets.token_hex(16)
