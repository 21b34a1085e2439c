"""Built-in event sinks. Each one is created from a URL by the factory registered in
`irgov_policy.default_plugins.sinks`, or directly for in-process use."""

from .host_stream import HostEvent, HostEventStreamSink
from .jsonl import JsonlSink
from .log import LogSink
from .observer import ObserverSink
from .redis_stream import RedisStreamSink
from .webhook import WebhookSink

__all__ = [
    "HostEvent",
    "HostEventStreamSink",
    "JsonlSink",
    "LogSink",
    "ObserverSink",
    "RedisStreamSink",
    "WebhookSink",
]
