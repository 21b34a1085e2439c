"""`https://...` (or `http://...`) - POST each event as a structured CloudEvent; any answer other
than 2xx is a failed delivery."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from ...errors import EventError
from ..cloudevent import CLOUDEVENTS_CONTENT_TYPE, to_cloudevent
from ..envelope import Event

__all__ = ["WebhookSink"]


class WebhookFailed(EventError):
    """The webhook answered with a status other than 2xx; the relay retries the event."""


class WebhookSink:
    def __init__(self, url: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EventError(f"webhook url `{url}` must be an http(s) url with a host")
        self.url = url
        # The name leaves out credentials and query (tokens): it is shown by `irgov events status`.
        self.name = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        self.timeout = timeout
        self.headers = {"content-type": CLOUDEVENTS_CONTENT_TYPE, **(headers or {})}
        self._client: Any = None

    def _http(self) -> Any:
        if self._client is None:
            try:
                import httpx
            except ImportError as exc:
                raise EventError("the webhook sink needs the `httpx` package (extra `http`)") from exc
            self._client = httpx.Client(timeout=self.timeout)
        return self._client

    def deliver(self, event: Event) -> None:
        body = json.dumps(to_cloudevent(event), separators=(",", ":"), ensure_ascii=False).encode()
        response = self._http().post(self.url, content=body, headers=self.headers)
        if not 200 <= response.status_code < 300:
            raise WebhookFailed(f"webhook answered {response.status_code}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
