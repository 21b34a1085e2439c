"""Who holds a relay lease: `host:pid:pid-namespace:random`, and whether that relay is known dead.

A lease normally ends by release or expiry. But a relay killed on this machine (the usual end of
a process on one host sharing an SQLite file) need not make the others wait for its expiry: when
the owner names this host and this PID namespace and its process is gone (or a zombie), its
leases are free at once. Anything else (another host, another container's PIDs, an owner written
by an older version) is left to expiry: a live relay must never lose a lease to a guess.
"""

from __future__ import annotations

import os
import secrets
import socket

__all__ = ["new_owner", "owner_is_dead"]


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"  # no /proc: PIDs cannot be checked, leases only expire


def new_owner() -> str:
    """A lease owner unique across hosts, processes and relays of one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{_pid_namespace()}:{secrets.token_hex(4)}"


def owner_is_dead(owner: str) -> bool:
    """True only when `owner` is a relay of this host and PID namespace whose process has ended."""
    parts = owner.rsplit(":", 3)
    if len(parts) != 4 or parts[0] != socket.gethostname() or parts[2] != _pid_namespace() or parts[2] == "-":
        return False
    if not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")  # killed, not yet reaped by its parent
