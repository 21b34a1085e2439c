"""Sinks and outbox from configuration (`irgov_policy.config`: `outbox`, `event_sinks`,
`event_retention_days`, i.e. `IRGOV_OUTBOX`, `IRGOV_EVENT_SINKS`, `IRGOV_EVENT_RETENTION_DAYS` or
the configuration file), plus `IRGOV_OUTBOX_SOURCES`: extra outboxes to drain.

Sink factories come from the `irgov_register_event_sinks` hook, keyed by URL scheme; the built-in
ones (`log`, `jsonl`, `redis`, `rediss`, `http`, `https`) register through the same hook.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..config import GovernanceConfig, load_config
from ..errors import EventError
from ..storage import redact
from .bus import EventBus
from .outbox import DEFAULT_OUTBOX_URL, outbox_from_url

__all__ = [
    "bus_from_config",
    "bus_from_env",
    "sink_factories",
    "sink_from_url",
    "sinks_from_urls",
    "split_urls",
]


def sink_factories() -> dict[str, Callable[[str], Any]]:
    """Sink factories by URL scheme, as plugins registered them (a scheme registered by two
    plugins has already been refused by the plugin manager)."""
    from ..plugins import get_plugin_manager

    return {r.name: r.value for r in get_plugin_manager().registrations("event sink")}


def sink_from_url(url: str, factories: Mapping[str, Callable[[str], Any]] | None = None) -> Any:
    text = url.strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    table = factories if factories is not None else sink_factories()
    factory = table.get(scheme)
    if factory is None:
        known = ", ".join(f"`{s}`" for s in sorted(table))
        raise EventError(f"unknown event sink `{redact(text)}`: no sink registered for scheme `{scheme}` (known: {known})")
    try:
        return factory(text)
    except EventError:
        raise
    except Exception as exc:
        raise EventError(f"event sink `{redact(text)}` cannot be created: {exc}") from exc


def split_urls(value: str | None) -> list[str]:
    return [u.strip() for u in (value or "").split(",") if u.strip()]


def sinks_from_urls(urls: Sequence[str]) -> list[Any]:
    if not urls:
        return []
    factories = sink_factories()
    return [sink_from_url(u, factories) for u in urls]


def bus_from_config(config: GovernanceConfig, *, sources: Sequence[str] = (), **options: Any) -> EventBus:
    """The bus a configuration describes: `outbox`, `event_sinks`, `event_retention_days`, plus
    extra outbox `sources` to drain (approval store databases or streams)."""
    sinks = sinks_from_urls(config.event_sinks)
    outbox = outbox_from_url(config.outbox or DEFAULT_OUTBOX_URL)
    options.setdefault("retention_seconds", config.event_retention_days * 86400.0)
    options.setdefault("lease_seconds", config.relay_lease_seconds)
    bus = EventBus(sinks, outbox=outbox, **options)
    try:
        for url in sources:
            bus.attach_outbox(url)
    except Exception:
        bus.close()
        raise
    return bus


def bus_from_env(environ: Mapping[str, str] | None = None, **options: Any) -> EventBus:
    """`bus_from_config(load_config())`, draining `IRGOV_OUTBOX_SOURCES` (comma-separated) too."""
    env = os.environ if environ is None else environ
    config = load_config(environ=env)
    return bus_from_config(config, sources=split_urls(env.get("IRGOV_OUTBOX_SOURCES")), **options)
