"""`jsonl:///path/events.jsonl` - one envelope per line, appended; fsync for critical events.

Each run of events is one `write` on a file opened with `O_APPEND`, so several relay processes
sharing the file (relays on one outbox, `docs/events.md`) never interleave parts of lines."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ...errors import EventError
from ..envelope import Event

__all__ = ["JsonlSink"]


def _path_from_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "jsonl" or not parts.path:
        raise EventError(f"jsonl sink url `{url}` must look like `jsonl:///path/events.jsonl`")
    path = unquote(parts.path)
    if parts.netloc in (".", ".."):
        path = parts.netloc + path  # jsonl://./relative.jsonl
    return path


class JsonlSink:
    def __init__(self, url_or_path: str | os.PathLike[str]) -> None:
        text = str(url_or_path)
        self.path = _path_from_url(text) if text.startswith("jsonl:") else text
        self.name = f"jsonl://{self.path}" if self.path.startswith("/") else f"jsonl:///{self.path}"
        self._fd: int | None = None
        self._lock = threading.Lock()

    def deliver(self, event: Event) -> None:
        self.deliver_many([event])

    def deliver_many(self, events: Sequence[Event]) -> None:
        """Append a run of events with one write; fsync once when any of them is critical."""
        data = memoryview("".join(event.to_json() + "\n" for event in events).encode("utf-8"))
        critical = any(event.critical for event in events)
        with self._lock:
            if self._fd is None:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                while data:  # a regular file takes it in one write; a short write is only continued
                    data = data[os.write(self._fd, data):]
                if critical:
                    os.fsync(self._fd)
            except OSError:
                os.close(self._fd)
                self._fd = None
                raise

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
