"""A raw HTTP/1.1 client for bodies that never end: it streams chunks and stops as soon as the
server answers, so a server that refuses early is seen refusing early."""

from __future__ import annotations

import contextlib
import select
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Streamed:
    status: int | None
    """the response status, None when the connection was reset before one arrived"""
    sent: int
    """body bytes the server took before it answered"""


def stream_body(port: int, path: str, *, headers: dict[str, str], total: int, chunked: bool = True,
                chunk_size: int = 1 << 20) -> Streamed:
    """POST `total` bytes to `path`, chunked or with a declared length, stopping early if answered."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    payload = b"7" * chunk_size
    piece = (b"%x\r\n" % chunk_size + payload + b"\r\n") if chunked else payload
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head.encode())
        sent = 0
        pending = memoryview(b"")
        answered = False
        while sent < total or pending:
            if not pending:
                pending = memoryview(piece)
                sent += chunk_size
            readable, writable, _ = select.select([sock], [sock], [], 60)
            if readable:
                answered = True
                break
            if not writable:
                break
            try:
                pending = pending[sock.send(pending):]
            except (BrokenPipeError, ConnectionResetError):
                break
        if not answered and chunked:
            with contextlib.suppress(OSError):
                sock.sendall(b"0\r\n\r\n")
        return Streamed(_read_status(sock), sent)


def _read_status(sock: socket.socket) -> int | None:
    data = b""
    try:
        while b"\r\n" not in data:
            more = sock.recv(4096)
            if not more:
                break
            data += more
    except (ConnectionResetError, TimeoutError):
        pass
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def peak_resident_bytes(pid: int) -> int:
    """The process's peak resident set size (VmHWM), which a body read and freed still raises."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")
