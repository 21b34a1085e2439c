"""The queue's live feed: server-sent events woken by the events the kernel publishes.

`ConsoleFeed` is an event sink on the kernel's bus. Delivering an event only wakes the streams
that wait (it is cheap and never fails); each stream then reads the queue again from the ledger
and sends it when it changed. Reading the ledger, rather than trusting the event, keeps the
stream right whatever the event was, and a poll every `poll_interval` seconds catches what no
event of this process announces: a request written by another worker, or a new approval
request (asking for an approval publishes no event of its own).

A stream lasts at most `STREAM_SECONDS`, then the browser reconnects by itself (`retry:`), so a
server that shuts down never waits long for open streams; each wake-up also checks that the
session is still live and ends the stream with a `signed-out` event when it is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ...events import Event

__all__ = ["FEED_SINK_NAME", "STREAM_SECONDS", "ConsoleFeed", "feed_for", "queue_stream"]

FEED_SINK_NAME = "irgov-console"
STREAM_SECONDS = 60.0
HEARTBEAT_SECONDS = 15.0


class ConsoleFeed:
    """A bus sink that wakes every waiting stream, on whichever loop it waits."""

    name = FEED_SINK_NAME
    inline = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.delivered = 0

    def deliver(self, event: Event) -> None:
        with self._lock:
            self.delivered += 1
            waiters = list(self._waiters)
        for loop, flag in waiters:
            # A closed loop's stream is gone: nothing to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(flag.set)

    def subscribe(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(entry)
        return entry

    def unsubscribe(self, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._waiters.discard(entry)


def feed_for(bus: Any) -> ConsoleFeed:
    """The bus's console feed, added on first use (routers built twice on one kernel share it)."""
    for sink in bus.sinks:
        if isinstance(sink, ConsoleFeed):
            return sink
    feed = ConsoleFeed()
    bus.add_sink(feed)
    return feed


def _message(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def queue_stream(feed: ConsoleFeed, snapshot: Callable[[], Awaitable[dict[str, Any] | None]], *,
                       poll_interval: float, is_disconnected: Callable[[], Awaitable[bool]],
                       stream_seconds: float = STREAM_SECONDS) -> AsyncIterator[bytes]:
    """`queue` events with what `snapshot()` returns whenever it changes; `signed-out` and the
    end when it returns None (the session ended)."""
    entry = feed.subscribe()
    _, flag = entry
    started = last_sent = time.monotonic()
    previous: str | None = None
    try:
        yield f"retry: {int(poll_interval * 1000)}\n\n".encode()
        while time.monotonic() - started < stream_seconds:
            flag.clear()
            state = await snapshot()
            if state is None:
                yield _message("signed-out", {})
                return
            # Ages change every second: a change of the rows proper is what makes a message.
            key = json.dumps(state.get("key"), sort_keys=True)
            if key != previous or time.monotonic() - last_sent >= HEARTBEAT_SECONDS:
                previous = key
                last_sent = time.monotonic()
                yield _message("queue", state["data"])
            left = stream_seconds - (time.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flag.wait(), timeout=max(0.0, min(poll_interval, left)))
            if await is_disconnected():
                return
    finally:
        feed.unsubscribe(entry)
