"""`jsonl:///path/events.jsonl` - one envelope per line, appended; fsync for critical events."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO
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
        self._file: IO[str] | None = None
        self._lock = threading.Lock()

    def deliver(self, event: Event) -> None:
        self.deliver_many([event])

    def deliver_many(self, events: Sequence[Event]) -> None:
        """Append a run of events with one write; fsync once when any of them is critical."""
        lines = "".join(event.to_json() + "\n" for event in events)
        critical = any(event.critical for event in events)
        with self._lock:
            if self._file is None:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open between deliveries
            try:
                self._file.write(lines)
                self._file.flush()
                if critical:
                    os.fsync(self._file.fileno())
            except OSError:
                self._file.close()
                self._file = None
                raise

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
