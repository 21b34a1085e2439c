"""The baseline of `load_http.py`: a bare ASGI application that reads a JSON body and answers it
back, served by the same uvicorn with the same workers. It shares no code with irgov_policy, so
the ratio says what the product costs over the HTTP stack and the load client themselves."""

from __future__ import annotations

import json
import os
from typing import Any

_PID = str(os.getpid()).encode()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    document = json.loads(body) if body else {"status": "ok"}
    answer = json.dumps({"echo": document}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode()),
                            (b"x-irgov-worker", _PID)]})
    await send({"type": "http.response.body", "body": answer})


def _nodelay_protocol() -> type:
    """uvicorn's HTTP protocol with TCP_NODELAY on each accepted connection: under `--workers`
    uvicorn binds a socket asyncio does not take for TCP, and Nagle then delays every response
    by about 40 ms. `irgov serve --workers` does the same; the baseline must too, to compare."""
    import socket

    from uvicorn.protocols.http.h11_impl import H11Protocol

    class EchoNoDelayProtocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().connection_made(transport)

    EchoNoDelayProtocol.__qualname__ = EchoNoDelayProtocol.__name__
    return EchoNoDelayProtocol


try:  # a module-level name, so uvicorn's spawned workers find it by reference
    EchoNoDelayProtocol = _nodelay_protocol()
except ImportError:  # pragma: no cover - uvicorn is part of the http extra
    EchoNoDelayProtocol = None  # type: ignore[assignment,misc]


def main(host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run("echo_app:app", host=host, port=port, workers=workers, log_level="warning",
                http=EchoNoDelayProtocol, app_dir=os.path.dirname(os.path.abspath(__file__)))
