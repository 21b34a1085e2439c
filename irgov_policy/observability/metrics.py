"""Prometheus metrics of the kernel, recorded where things happen and read by `GET /metrics`.

Without `prometheus-client` every function here does nothing. With `PROMETHEUS_MULTIPROC_DIR`
set before the first metric is made (`irgov serve` sets it for its workers), values go to
per-process files that a scrape of any worker adds up; gauges of live state (`irgov_leader`)
count only live processes. Metrics are made on first use in a registry of their own, so a host
application's default registry is left alone.

| metric | type | labels |
|---|---|---|
| `irgov_decisions_total` | counter | `status`, `pack_digest` |
| `irgov_decision_seconds` | histogram | - |
| `irgov_rule_errors_total`, `irgov_budget_exceeded_total` | counter | - |
| `irgov_approvals_total` | counter | `state`: requested, granted, consumed, expired, revoked |
| `irgov_time_to_approve_seconds` | histogram | - |
| `irgov_consume_failures_total` | counter | `reason` |
| `irgov_relay_failures_total` | counter | `sink` |
| `irgov_pack_reloads_total` | counter | `result`: ok, failed |
| `irgov_leader` | gauge (live processes' sum) | `lease` |

The outbox gauges (`irgov_outbox_pending`, `irgov_outbox_oldest_pending_seconds`) are read from
the outbox at scrape time (`scrape.py`).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

__all__ = ["MULTIPROC_ENV", "approval_state", "available", "consume_failure", "decision", "leader",
           "multiprocess_dir", "pack_reload", "registry", "relay_failure", "time_to_approve"]

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_DECISION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# From a quick yes to a request left over a weekend.
_APPROVE_BUCKETS = (5.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0)

_lock = threading.Lock()
_made: dict[str, Any] | None = None
_missing = False


def available() -> bool:
    """Whether `prometheus-client` is installed (else metrics are not recorded)."""
    return _metrics() is not None


def multiprocess_dir() -> str | None:
    """The folder of multi-process values, when this process writes there."""
    return os.environ.get(MULTIPROC_ENV) or None


def registry() -> Any:
    """The registry the metrics live in (single-process mode), or None without the client."""
    made = _metrics()
    return None if made is None else made["registry"]


def _metrics() -> dict[str, Any] | None:
    global _made, _missing
    if _made is not None or _missing:
        return _made
    with _lock:
        if _made is not None or _missing:
            return _made
        try:
            import prometheus_client as prom
        except ImportError:
            _missing = True
            return None
        reg = prom.CollectorRegistry(auto_describe=True)
        _made = {
            "registry": reg,
            "decisions": prom.Counter("irgov_decisions", "decisions by status and pack set digest",
                                      ["status", "pack_digest"], registry=reg),
            "decision_seconds": prom.Histogram("irgov_decision_seconds", "time to decide on one IR",
                                               buckets=_DECISION_BUCKETS, registry=reg),
            "rule_errors": prom.Counter("irgov_rule_errors", "rules that failed while deciding (RULE_ERROR)",
                                        registry=reg),
            "budget": prom.Counter("irgov_budget_exceeded", "decisions stopped by their budget (BUDGET_EXCEEDED)",
                                   registry=reg),
            "approvals": prom.Counter("irgov_approvals", "approvals and requests entering a state",
                                      ["state"], registry=reg),
            "time_to_approve": prom.Histogram("irgov_time_to_approve_seconds",
                                              "from an approval request to its grant",
                                              buckets=_APPROVE_BUCKETS, registry=reg),
            "consume_failures": prom.Counter("irgov_consume_failures", "refused consumes by reason",
                                             ["reason"], registry=reg),
            "relay_failures": prom.Counter("irgov_relay_failures", "failed deliveries of an event to a sink",
                                           ["sink"], registry=reg),
            "reloads": prom.Counter("irgov_pack_reloads", "rule pack reloads by result", ["result"], registry=reg),
            "leader": prom.Gauge("irgov_leader", "1 in the process that holds the lease",
                                 ["lease"], registry=reg, multiprocess_mode="livesum"),
        }
        return _made


def _record(name: str, labels: dict[str, str] | None = None, *, observe: float | None = None,
            inc: float = 1.0, set_to: float | None = None) -> None:
    made = _metrics()
    if made is None:
        return
    try:
        metric = made[name].labels(**labels) if labels else made[name]
        if observe is not None:
            metric.observe(observe)
        elif set_to is not None:
            metric.set(set_to)
        else:
            metric.inc(inc)
    except Exception as exc:  # a metric must never break what it measures
        logger.debug("metric %s not recorded: %s", name, exc)


def decision(status: str, pack_digest: str, seconds: float, *, rule_errors: int = 0, budget_hit: bool = False) -> None:
    _record("decisions", {"status": status, "pack_digest": pack_digest})
    _record("decision_seconds", observe=max(seconds, 0.0))
    if rule_errors:
        _record("rule_errors", inc=rule_errors)
    if budget_hit:
        _record("budget")


def approval_state(state: str, count: int = 1) -> None:
    if count > 0:
        _record("approvals", {"state": state}, inc=count)


def time_to_approve(seconds: float) -> None:
    _record("time_to_approve", observe=max(seconds, 0.0))


def consume_failure(reason: str) -> None:
    _record("consume_failures", {"reason": reason})


def relay_failure(sink: str) -> None:
    _record("relay_failures", {"sink": sink})


def pack_reload(ok: bool) -> None:
    _record("reloads", {"result": "ok" if ok else "failed"})


def leader(lease: str, leading: bool) -> None:
    _record("leader", {"lease": lease}, set_to=1.0 if leading else 0.0)
