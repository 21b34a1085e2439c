"""`redis://host:port/db?stream=NAME&maxlen=N` - `XADD` with an approximate length bound and the
event id as a field, so consumers can deduplicate at-least-once deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ...errors import EventError
from ..envelope import Event

__all__ = ["RedisStreamSink"]

DEFAULT_STREAM = "irgov:events"
DEFAULT_MAXLEN = 100_000


class RedisStreamSink:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.stream = query.get("stream", [DEFAULT_STREAM])[0]
        try:
            self.maxlen = int(query.get("maxlen", [str(DEFAULT_MAXLEN)])[0])
        except ValueError as exc:
            raise EventError(f"redis sink url `{url}`: `maxlen` is not an integer") from exc
        if self.maxlen <= 0:
            raise EventError(f"redis sink url `{url}`: `maxlen` must be positive")
        self.client_url = parts._replace(query="", fragment="").geturl()
        host = parts.hostname or "localhost"
        port = parts.port or 6379
        db = parts.path.lstrip("/") or "0"
        # The name leaves out any password: it is shown by `irgov events status`.
        self.name = f"{parts.scheme}://{host}:{port}/{db}?stream={self.stream}"
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            try:
                import redis
            except ImportError as exc:
                raise EventError("the redis sink needs the `redis` package (extra `redis`)") from exc
            self._client = redis.Redis.from_url(self.client_url, socket_timeout=5, socket_connect_timeout=5)
        return self._client

    @staticmethod
    def _fields(event: Event) -> dict[str, str]:
        return {
            "event_id": event.id,
            "type": event.type,
            "tenant_id": event.tenant_id or "",
            "critical": "1" if event.critical else "0",
            "body": event.to_json(),
        }

    def deliver(self, event: Event) -> None:
        self._redis().xadd(self.stream, self._fields(event), maxlen=self.maxlen, approximate=True)

    def deliver_many(self, events: Sequence[Event]) -> None:
        """One round trip for a run of events, in order; MULTI/EXEC so they land all or none."""
        pipe = self._redis().pipeline(transaction=True)
        for event in events:
            pipe.xadd(self.stream, self._fields(event), maxlen=self.maxlen, approximate=True)
        pipe.execute()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
