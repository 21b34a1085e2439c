"""One scrape: the recorded metrics (every worker's, in multi-process mode) and the gauges read
now (the outbox backlog per sink), in the Prometheus text format."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import metrics

__all__ = ["SinkGauge", "clean_multiprocess_dir", "render"]

logger = logging.getLogger(__name__)

# `gauge_livesum_<pid>.db`: the files of gauges that count only live processes.
_LIVE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


@dataclass(frozen=True)
class SinkGauge:
    sink: str
    pending: int
    oldest_pending_seconds: float
    failing: int


def clean_multiprocess_dir(path: str | os.PathLike[str]) -> Path:
    """Make `path` an empty folder for multi-process values: values of an earlier run would be
    added to this run's (`irgov serve` calls it before starting workers)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.glob("*.db"):
        entry.unlink()
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_workers(folder: str) -> None:
    """A worker killed without a clean stop leaves its live gauges behind (a leader that died
    would still count); the workers share this host, so ask the kernel who is alive."""
    from prometheus_client import multiprocess

    for entry in Path(folder).glob("gauge_live*.db"):
        match = _LIVE_FILE.fullmatch(entry.name)
        if match and not _alive(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), folder)  # type: ignore[no-untyped-call]


class _ReadNow:
    def __init__(self, sinks: Sequence[SinkGauge]) -> None:
        self.sinks = sinks

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        pending = GaugeMetricFamily("irgov_outbox_pending", "events waiting for delivery to a sink", labels=["sink"])
        oldest = GaugeMetricFamily("irgov_outbox_oldest_pending_seconds",
                                   "age of the oldest event waiting for a sink (0 when none)", labels=["sink"])
        failing = GaugeMetricFamily("irgov_outbox_failing", "events whose last delivery to a sink failed",
                                    labels=["sink"])
        for sink in self.sinks:
            pending.add_metric([sink.sink], sink.pending)
            oldest.add_metric([sink.sink], sink.oldest_pending_seconds)
            failing.add_metric([sink.sink], sink.failing)
        yield from (pending, oldest, failing)


def render(sinks: Sequence[SinkGauge] = ()) -> tuple[bytes, str]:
    """The body and content type of `GET /metrics`; raises `RuntimeError` without prometheus-client."""
    if not metrics.available():
        raise RuntimeError("metrics need the `prometheus-client` package: install `irgov-policy[http]`")
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    now = CollectorRegistry(auto_describe=False)
    now.register(_ReadNow(sinks))
    folder = metrics.multiprocess_dir()
    if folder is not None:
        from prometheus_client import multiprocess

        _forget_dead_workers(folder)
        recorded = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(recorded, path=folder)  # type: ignore[no-untyped-call]
    else:
        recorded = metrics.registry()
    return generate_latest(recorded) + generate_latest(now), CONTENT_TYPE_LATEST
