"""Watching pack sources for changes, with a debounce, in one background thread.

`watchfiles` (inotify, FSEvents, ReadDirectoryChangesW; polling where none exists) reports a
burst of writes as one batch after `debounce_ms` of quiet. A file source is watched through its
folder, because editors save by writing a new file and renaming it over the old one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import watchfiles

__all__ = ["PackWatcher"]

logger = logging.getLogger(__name__)

DEFAULT_DEBOUNCE_MS = 300


class PackWatcher:
    """Call `on_change(paths)` after each debounced batch of changes to `sources` (files,
    folders or bundles). `start()` and `stop()` are idempotent."""

    def __init__(self, sources: Sequence[str | Path], on_change: Callable[[set[str]], None], *,
                 debounce_ms: int = DEFAULT_DEBOUNCE_MS) -> None:
        self.on_change = on_change
        self.debounce_ms = debounce_ms
        self._folders: set[Path] = set()
        self._files: set[Path] = set()
        for source in sources:
            path = Path(source).resolve()
            if path.is_dir():
                self._folders.add(path)
            else:
                self._files.add(path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def roots(self) -> list[Path]:
        return sorted(self._folders | {f.parent for f in self._files})

    def _relevant(self, change: watchfiles.Change, name: str) -> bool:
        path = Path(name)
        if path in self._files:
            return True
        for folder in self._folders:
            if path.is_relative_to(folder):
                # Hidden names (editor swap files, `.git`, a `.irgov` state folder) are not packs.
                return not any(part.startswith(".") for part in path.relative_to(folder).parts)
        return False

    def start(self) -> PackWatcher:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="irgov-pack-watcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)

    def _run(self) -> None:
        roots = [r for r in self.roots() if r.exists()]
        if not roots:
            logger.error("not watching the rule packs: none of %s exists", ", ".join(map(str, self.roots())))
            return
        try:
            for changes in watchfiles.watch(*roots, watch_filter=self._relevant, debounce=self.debounce_ms,
                                            stop_event=self._stop, raise_interrupt=False, rust_timeout=1000):
                try:
                    self.on_change({name for _, name in changes})
                except Exception:  # the watcher must survive a failing reload
                    logger.exception("reacting to a change of the rule packs failed")
        except Exception as exc:
            logger.error("watching the rule packs stopped: %s", exc)
