"""The built-in event sinks, registered by URL scheme."""

from __future__ import annotations

from ..events.sinks import JsonlSink, LogSink, RedisStreamSink, WebhookSink
from ..hookspecs import RegisterEventSink, hookimpl


@hookimpl
def irgov_register_event_sinks(register: RegisterEventSink) -> None:
    register("log", LogSink)
    register("jsonl", JsonlSink)
    register("redis", RedisStreamSink)
    register("rediss", RedisStreamSink)
    register("http", WebhookSink)
    register("https", WebhookSink)
