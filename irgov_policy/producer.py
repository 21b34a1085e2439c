"""What an upstream planner really sends, read as it means it.

Planners build IRs with Pydantic models, so an IR arrives with the habits of a Pydantic dump:
- `null` for every unset optional field: here `null` means absent, for every optional field of
  the IR and of its steps (required fields stay required);
- a naive `created_at` (`datetime.utcnow().isoformat()`): read as UTC, unless the deployment sets
  `strict_timestamps`; the decision notes that it was read so;
- computed fields sent back (`risk_tier`, `requires_approval`, on the IR and on steps): the
  schema checks that they are well-formed, the model drops them, they are never trusted or hashed.

`created_at` is hashed in one canonical UTC form, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, so `...Z`,
`...+00:00`, any other offset of the same instant and the naive form all give the same IR hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .text_rules import (
    MAX_PRINCIPAL_LENGTH,
    MAX_TENANT_LENGTH,
    has_control_characters,
    holds_token,
    is_blank,
    is_encodable,
)

__all__ = [
    "BLANK_REFUSED_IR_FIELDS",
    "BLANK_REFUSED_STEP_FIELDS",
    "OPTIONAL_IR_FIELDS",
    "OPTIONAL_STEP_FIELDS",
    "canonical_created_at",
    "drop_nulls",
    "salvage_identity",
]

OPTIONAL_IR_FIELDS = frozenset({"request_id", "created_at", "intent_summary", "labels", "risk_tier",
                                "requires_approval"})
OPTIONAL_STEP_FIELDS = frozenset({"params", "idempotency_key", "constraints", "budget_cents", "step_id",
                                  "description", "risk_tier", "requires_approval"})
BLANK_REFUSED_IR_FIELDS = ("tenant_id",)
BLANK_REFUSED_STEP_FIELDS = ("action", "provider", "resource")


def drop_nulls(data: Any) -> Any:
    """`data` without the optional fields that are `null`, at the IR and step level. Anything
    that is not shaped like an IR is returned as it is, for the schema to judge."""
    if not isinstance(data, Mapping):
        return data
    if not any(data.get(k, 0) is None for k in OPTIONAL_IR_FIELDS) and not _steps_with_nulls(data):
        return data  # the common case costs one scan and no copy
    out = {k: v for k, v in data.items() if not (v is None and k in OPTIONAL_IR_FIELDS)}
    steps = out.get("steps")
    if isinstance(steps, list):
        out["steps"] = [
            {k: v for k, v in s.items() if not (v is None and k in OPTIONAL_STEP_FIELDS)}
            if isinstance(s, Mapping) else s
            for s in steps
        ]
    return out


def _steps_with_nulls(data: Mapping[str, Any]) -> bool:
    steps = data.get("steps")
    if not isinstance(steps, list):
        return False
    return any(isinstance(s, Mapping) and any(s.get(k, 0) is None for k in OPTIONAL_STEP_FIELDS) for s in steps)


def canonical_created_at(value: str, *, strict: bool) -> tuple[str, str | None] | str:
    """(canonical form, note) for a valid `created_at`, else the problem as a message. The note
    says when a naive timestamp was read as UTC."""
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return f"`{value}` is not an iso 8601 date-time"
    note = None
    if parsed.tzinfo is None:
        if strict:
            return f"`{value}` has no timezone offset (strict_timestamps is on)"
        parsed = parsed.replace(tzinfo=UTC)
        note = f"`created_at` `{value}` has no offset and was read as utc"
    try:
        utc = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return f"`{value}` is outside the representable range of dates"
    fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z", note


def _valid_text(value: Any, max_length: int) -> bool:
    return (isinstance(value, str) and 0 < len(value) <= max_length and not is_blank(value)
            and not has_control_characters(value) and not holds_token(value)
            and is_encodable(value))


def salvage_identity(data: Any) -> tuple[str, str | None, int]:
    """Who a refused IR belongs to, from the fields that are valid on their own: (tenant id or
    "", request id or None, step count), so a REJECT can still be attributed."""
    if not isinstance(data, Mapping):
        return "", None, 0
    tenant = data.get("tenant_id")
    request = data.get("request_id")
    steps = data.get("steps")
    return (tenant if isinstance(tenant, str) and _valid_text(tenant, MAX_TENANT_LENGTH) else "",
            request if isinstance(request, str) and _valid_text(request, MAX_PRINCIPAL_LENGTH) else None,
            len(steps) if isinstance(steps, list) else 0)
