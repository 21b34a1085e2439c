"""Whether a Redis server keeps its data across a restart, asked when an approval store opens.

An approval, its ledger entries and the events in its outbox stream live only in the server's
memory unless it writes RDB snapshots (`save`) or an append-only file (`appendonly yes`). A
server with neither loses them all when it restarts: pending approvals vanish, and critical
events that no relay had read yet are gone. `check_persistence` asks `CONFIG GET save` and
`CONFIG GET appendonly`; where CONFIG is renamed or denied (managed services, ACLs) it falls
back to `INFO persistence`, which shows an AOF but not a snapshot schedule. What it finds is
logged once per server and process, as a warning, or refused with `require=True` (the
`require_durable_redis` setting) whenever durability is not confirmed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from ..errors import StoreError
from .redis_client import redis_error

__all__ = ["Persistence", "check_persistence", "read_persistence"]

logger = logging.getLogger(__name__)

_warned: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class Persistence:
    """`durable` is True (snapshots or an AOF), False (neither) or None (could not be told)."""

    durable: bool | None
    detail: str


def read_persistence(client: Any) -> Persistence:
    """The server's persistence settings; a server that cannot be reached raises its client error."""
    response_error = _response_error()
    try:
        save = str(client.config_get("save").get("save", "")).strip()
        appendonly = str(client.config_get("appendonly").get("appendonly", "no")).strip().lower()
    except response_error as exc:  # CONFIG renamed away, or denied by an ACL
        try:
            info = client.info("persistence")
        except response_error:
            return Persistence(None, f"CONFIG GET is refused ({_first_line(exc)}) and so is INFO persistence")
        if str(info.get("aof_enabled", "0")) == "1":
            return Persistence(True, "appendonly yes (INFO persistence; CONFIG GET is refused)")
        return Persistence(None, f"CONFIG GET is refused ({_first_line(exc)}) and INFO persistence shows no "
                                 "append-only file, so RDB snapshots cannot be confirmed")
    if appendonly == "yes":
        return Persistence(True, "appendonly yes" + (f", save `{save}`" if save else ""))
    if save:
        return Persistence(True, f"RDB snapshots (save `{save}`), no append-only file: writes since the last "
                                 "snapshot are lost on a crash")
    return Persistence(False, "save is empty and appendonly is no")


def check_persistence(client: Any, where: str, *, require: bool) -> Persistence | None:
    """Warn once (or, with `require`, raise `StoreError`) when the server behind `where` would not
    keep approvals across a restart. An unreachable server is left to the first real command,
    unless durability is required: then it cannot be confirmed, and that is refused."""
    try:
        found = read_persistence(client)
    except redis_error("redis store") as exc:
        if require:
            raise StoreError(f"{where}: require_durable_redis is set and the server's persistence cannot be "
                             f"read: {_first_line(exc)}") from None
        logger.debug("%s: persistence not checked: %s", where, exc)
        return None
    if found.durable:
        return found
    lost = "approvals, their ledger entries and undelivered events are lost when the server restarts"
    if require:
        state = "keeps no persistence" if found.durable is False else "may keep no persistence"
        raise StoreError(f"{where}: the server {state} ({found.detail}) and require_durable_redis is set: {lost}")
    with _warned_lock:
        if where in _warned:
            return found
        _warned.add(where)
    if found.durable is False:
        logger.warning("%s: the server keeps no persistence (%s): %s; enable appendonly (or save), or set "
                       "require_durable_redis to refuse such a server", where, found.detail, lost)
    else:
        logger.warning("%s: cannot confirm the server keeps its data (%s); if it does not, %s", where,
                       found.detail, lost)
    return found


def _response_error() -> type[Exception]:
    import redis

    error: type[Exception] = redis.ResponseError
    return error


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
