"""Notifications: tell people by webhook that an approval waits, or what became of it.

`NotifySink` is an event sink like any other, fed by the relay from the events the package
publishes, so a notification is sent off the request path and a slow or failing receiver never
delays or changes a decision. It reacts to a new approval request (`ir.approval_requested`) and
to what follows (`ir.approval_created`: granted; `ir.approval_request_revoked`: denied or
withdrawn; `ir.approval_expired`; `ir.approval_consumed`), and ignores the rest.

Each URL gets `attempts` tries with a short backoff; after the last the notification is dropped
with a warning (a notification is a nudge, not the audit trail: the events themselves stay in
the outbox and their other sinks). The body is `json` (an object with the facts) or `slack`
(`{"text": ...}`, what a Slack incoming webhook accepts). It never holds a token or a digest of
one (events carry none); URLs are never logged with their query or credentials.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ...errors import ConfigError
from ..envelope import Event
from ..types import EventType, ExtensionEventType

__all__ = ["NOTIFY_FORMATS", "NOTIFY_TYPES", "NotifySink", "notification"]

logger = logging.getLogger(__name__)

NOTIFY_FORMATS = ("json", "slack")
#: what each notified event means to a person
NOTIFY_TYPES: Mapping[str, str] = {
    ExtensionEventType.APPROVAL_REQUESTED.value: "requested",
    EventType.APPROVAL_CREATED.value: "granted",
    ExtensionEventType.APPROVAL_REQUEST_REVOKED.value: "revoked",
    EventType.APPROVAL_EXPIRED.value: "expired",
    EventType.APPROVAL_CONSUMED.value: "consumed",
}
_FIELDS = ("approval_request_id", "approval_id", "tenant_id", "ir_hash", "risk_tier", "intent_summary",
           "step_count", "requested_by", "created_by", "revoked_by", "consumed_by", "reason", "expires_at")


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


def notification(event: Event) -> dict[str, Any] | None:
    """The JSON notification of `event`, or None for an event nobody is told of."""
    what = NOTIFY_TYPES.get(str(event.type))
    if what is None:
        return None
    payload = event.payload
    out: dict[str, Any] = {"notification": what, "event_type": str(event.type), "event_id": event.id,
                           "at": event.to_dict().get("timestamp")}
    out.update({k: payload[k] for k in _FIELDS if payload.get(k) is not None})
    if payload.get("request_id") is not None:
        out["ir_request_id"] = payload["request_id"]  # the events' `request_id` is the IR's
    return out


def _text(note: Mapping[str, Any]) -> str:
    tenant, what = note.get("tenant_id", "?"), note["notification"]
    request = note.get("approval_request_id") or note.get("approval_id") or note.get("ir_hash", "")
    if what == "requested":
        head = (f"Approval requested for tenant {tenant}: {request} (tier {note.get('risk_tier')}, "
                f"{note.get('step_count')} steps) by {note.get('requested_by')}")
        if note.get("intent_summary"):
            head += f": {note['intent_summary']}"
        return head
    who = note.get("created_by") or note.get("revoked_by") or note.get("consumed_by")
    line = f"Approval {what} for tenant {tenant}: {request}" + (f" by {who}" if who else "")
    return line + (f" ({note['reason']})" if note.get("reason") else "")


class NotifySink:
    """POST a notification of each request event to every URL (see the module's docstring)."""

    name = "notify"

    def __init__(self, urls: Sequence[str], *, form: str = "json", timeout: float = 5.0, attempts: int = 3,
                 backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep) -> None:
        if form not in NOTIFY_FORMATS:
            raise ConfigError(f"`notify_format` must be one of {', '.join(NOTIFY_FORMATS)}, not `{form}`")
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"notification url `{_shown(url)}` must be an http(s) url with a host")
        self.urls = tuple(urls)
        self.form = form
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._sleep = sleep
        self._client: Any = None
        self.sent = 0
        self.dropped = 0

    def __repr__(self) -> str:
        return f"NotifySink(urls={[_shown(u) for u in self.urls]!r}, form={self.form!r})"

    def _http(self) -> Any:
        if self._client is None:
            try:
                import httpx
            except ImportError as exc:
                raise ConfigError("notifications need the `httpx` package (extra `http`)") from exc
            self._client = httpx.Client(timeout=self.timeout)
        return self._client

    def deliver(self, event: Event) -> None:
        note = notification(event)
        if note is None:
            return
        body = note if self.form == "json" else {"text": _text(note)}
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        for url in self.urls:
            self._post(url, content, note["notification"])

    def _post(self, url: str, content: bytes, what: str) -> None:
        problem = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._http().post(url, content=content, headers={"content-type": "application/json"})
                if 200 <= response.status_code < 300:
                    self.sent += 1
                    return
                problem = f"answered {response.status_code}"
            except ConfigError:
                raise
            except Exception as exc:  # a receiver that is down or slow: retried, then dropped
                problem = type(exc).__name__
            if attempt < self.attempts:
                self._sleep(self.backoff * attempt)
        self.dropped += 1
        logger.warning("notification `%s` to %s dropped after %d attempts: %s", what, _shown(url), self.attempts,
                       problem)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
