"""`redis://host:port/db?stream=NAME&maxlen=N` - `XADD` with an approximate length bound and the
event id as a field, so consumers can deduplicate at-least-once deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import EventError
from ...storage import StoreURL, redis_client
from ..envelope import Event

__all__ = ["RedisStreamSink"]

DEFAULT_STREAM = "irgov:events"
DEFAULT_MAXLEN = 100_000


class RedisStreamSink:
    def __init__(self, url: str | StoreURL) -> None:
        self.address = StoreURL.parse(url, what="redis sink")
        options = self.address.check_options({"stream", "maxlen"}, what="redis sink")
        self.stream = options.get("stream", DEFAULT_STREAM)
        try:
            self.maxlen = int(options.get("maxlen", str(DEFAULT_MAXLEN)))
        except ValueError:
            raise EventError(f"redis sink url `{self.address}`: `maxlen` is not an integer") from None
        if self.maxlen <= 0:
            raise EventError(f"redis sink url `{self.address}`: `maxlen` must be positive")
        a = self.address
        # The name leaves out any password: it is shown by `irgov events status`.
        self.name = f"{a.scheme}://{a.host}:{a.port}/{a.database}?stream={self.stream}"
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            self._client = redis_client(self.address, what="redis sink", decode_responses=False)
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
