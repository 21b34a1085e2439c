"""Sinks and outbox from configuration: `IRGOV_EVENT_SINKS`, `IRGOV_OUTBOX`,
`IRGOV_OUTBOX_SOURCES`, `IRGOV_OUTBOX_RETENTION`.

Sink factories come from the `irgov_register_event_sinks` hook, keyed by URL scheme; the built-in
ones (`log`, `jsonl`, `redis`, `rediss`, `http`, `https`) register through the same hook.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import EventError
from .bus import EventBus
from .outbox import DEFAULT_OUTBOX_URL, outbox_from_url

__all__ = [
    "DEFAULT_RETENTION_SECONDS",
    "bus_from_env",
    "retention_from_env",
    "sink_factories",
    "sink_from_url",
    "sinks_from_env",
    "split_urls",
]

DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600


def sink_factories() -> dict[str, Callable[[str], Any]]:
    from ..plugins import get_plugin_manager

    factories: dict[str, Callable[[str], Any]] = {}

    def register(scheme: str, factory: Callable[[str], Any]) -> None:
        key = scheme.lower().rstrip(":")
        if key in factories:
            raise EventError(f"event sink scheme `{key}` is registered twice")
        factories[key] = factory

    get_plugin_manager().hook.irgov_register_event_sinks(register=register)
    return factories


def sink_from_url(url: str, factories: Mapping[str, Callable[[str], Any]] | None = None) -> Any:
    text = url.strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    table = factories if factories is not None else sink_factories()
    factory = table.get(scheme)
    if factory is None:
        known = ", ".join(f"`{s}`" for s in sorted(table))
        raise EventError(f"unknown event sink `{text}`: no sink registered for scheme `{scheme}` (known: {known})")
    try:
        return factory(text)
    except EventError:
        raise
    except Exception as exc:
        raise EventError(f"event sink `{text}` cannot be created: {exc}") from exc


def split_urls(value: str | None) -> list[str]:
    return [u.strip() for u in (value or "").split(",") if u.strip()]


def sinks_from_env(environ: Mapping[str, str] | None = None) -> list[Any]:
    env = os.environ if environ is None else environ
    urls = split_urls(env.get("IRGOV_EVENT_SINKS"))
    if not urls:
        return []
    factories = sink_factories()
    return [sink_from_url(u, factories) for u in urls]


def retention_from_env(environ: Mapping[str, str] | None = None) -> float | None:
    env = os.environ if environ is None else environ
    raw = env.get("IRGOV_OUTBOX_RETENTION")
    if raw is None or not raw.strip():
        return DEFAULT_RETENTION_SECONDS
    if raw.strip().lower() in ("never", "forever", "none"):
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise EventError(f"`IRGOV_OUTBOX_RETENTION` = `{raw}` is not a number of seconds") from exc
    if value < 0:
        raise EventError(f"`IRGOV_OUTBOX_RETENTION` = `{raw}` is negative")
    return value


def bus_from_env(environ: Mapping[str, str] | None = None, **options: Any) -> EventBus:
    """The bus described by the environment: outbox (default `sqlite:///./.irgov/outbox.db`),
    sinks, extra outbox sources and retention."""
    env = os.environ if environ is None else environ
    sinks = sinks_from_env(env)
    outbox = outbox_from_url(env.get("IRGOV_OUTBOX") or DEFAULT_OUTBOX_URL)
    bus = EventBus(sinks, outbox=outbox, retention_seconds=retention_from_env(env), **options)
    for url in split_urls(env.get("IRGOV_OUTBOX_SOURCES")):
        bus.attach_outbox(url)
    return bus
