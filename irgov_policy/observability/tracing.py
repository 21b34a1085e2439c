"""OpenTelemetry spans around validate, audit and consume, when `opentelemetry-api` is
importable. The API alone records nothing: the host (or `opentelemetry-instrument`) installs
an SDK tracer provider and exporter, and these spans join its traces."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["set_attributes", "span"]

try:
    from opentelemetry import trace as _trace
except ImportError:  # pragma: no cover - opentelemetry-api is optional
    _trace = None  # type: ignore[assignment]

_TRACER_NAME = "irgov_policy"


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A span named `irgov.<name>` (None without OpenTelemetry). The caller sets outcome
    attributes on it; an exception escaping the block is recorded on the span and re-raised."""
    if _trace is None:
        yield None
        return
    tracer = _trace.get_tracer(_TRACER_NAME)
    with tracer.start_as_current_span(f"irgov.{name}", attributes=dict(attributes or {})) as current:
        yield current


def set_attributes(current: Any, **attributes: Any) -> None:
    """Set attributes on a span from `span()` (nothing when there is none); None values are skipped."""
    if current is None:
        return
    for key, value in attributes.items():
        if value is not None:
            current.set_attribute(f"irgov.{key}", value)
