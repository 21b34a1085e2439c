"""The HTTP protocol of `irgov serve --workers N`: uvicorn's own, with `TCP_NODELAY` set on each
connection a worker accepts.

With workers, uvicorn binds the listening socket itself as a plain `socket.socket()`, whose
protocol number is 0, so asyncio does not recognise the accepted connections as TCP and leaves
Nagle's algorithm on. uvicorn writes a response's head and body separately, and a keep-alive
client that delays its ACK then holds every response back by about 40 ms. Imported only when
workers start (it needs uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
from typing import Any

__all__ = ["NoDelayProtocol"]

_Base: Any
if importlib.util.find_spec("httptools") is not None:  # uvicorn's choice when it is installed
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
else:
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base

class NoDelayProtocol(_Base):  # type: ignore[misc]
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # not fatal: the connection is only slower
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
