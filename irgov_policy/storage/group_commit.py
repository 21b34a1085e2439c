"""Group commit for a SQLite file: one writer per file, table set and process.

Used by the outbox (events) and by the approval store's ledger (decision rows). Callers hand
their rows to the writer and the writer commits whatever has queued up in one transaction, with
the caller's `write_batch`. A critical row waits until a commit with `synchronous=FULL` holds it,
and every critical row queued meanwhile (from any thread) shares that one fsync. A row submitted
with `wait` and not critical returns once a `synchronous=NORMAL` commit holds it (it survives a
killed process, not a power cut). A row without `wait` does not wait at all: it is committed with
the next batch, with `synchronous=NORMAL` unless a critical row shares the batch.

The crash window of rows nobody waits for, stated plainly: between `append` returning and the next
commit (normally at most a few milliseconds: the writer lets such rows gather for `linger`, 5 ms,
before committing them; longer while another process holds the database's write lock) the
row lives only in this process's memory and a killed process loses it. A clean
exit does not: closing the writer and the interpreter's exit (`atexit`) both drain the queue
first. Once committed with `NORMAL`, a row survives a killed process but not a power cut until
the next `FULL` commit or checkpoint syncs the write-ahead log.

A batch that fails to commit (a locked or full disk) stays at the head of the queue and is tried
again with a growing pause; waiting publishers get the error at once (their row stays queued, and
a second append of the same event id is ignored).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["GroupCommitWriter", "flush_writers_of"]

logger = logging.getLogger(__name__)

Row = TypeVar("Row")

_LIVE: weakref.WeakSet[GroupCommitWriter[Any]] = weakref.WeakSet()


class GroupCommitWriter(Generic[Row]):
    """Commits queued rows in batches, one commit at a time per process.

    A publisher that must wait commits the queue itself when no commit is under way (no thread
    hand-off on an idle file) and otherwise waits for the commit under way and the next one,
    which takes every row queued meanwhile. A background thread commits rows nobody waits for."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], *,
                 write_batch: Callable[[sqlite3.Connection, list[Row]], None], name: str,
                 error: Callable[[str], Exception], what: str = "rows",
                 on_commit: Callable[[], None] | None = None, max_batch: int = 2000,
                 max_queued: int = 100_000, linger: float = 0.005) -> None:
        """`write_batch` writes rows inside the writer's transaction; `name` is the file (readers
        flush the writers of their file, `flush_writers_of`); `error` makes the exception a
        waiting caller gets; `what` names the rows in log lines ("events")."""
        self._connect = connect
        self._write_batch = write_batch
        self._error_type = error
        self.what = what
        self.name = name
        self.on_commit = on_commit
        self.max_batch = max_batch
        self.max_queued = max_queued
        self.linger = linger
        self.commits = 0
        self.lost = 0
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        # Also the state of a forked child: the parent's queue is the parent's to write.
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._queue: list[tuple[Row, bool]] = []
        self._submitted = 0
        self._last_critical = 0  # the ticket of the last critical row queued
        self._urgent_upto = 0  # the ticket of the last urgent row queued
        self._committed = 0
        self._committing = False
        self._error: BaseException | None = None
        self._failed_upto = 0  # the last ticket of the last batch that failed to commit
        self._stopping = False
        self._abandon = False
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []

    # -- publishing ------------------------------------------------------------------------

    def submit(self, row: Row, *, critical: bool, wait: bool, urgent: bool = False) -> None:
        """Queue `row`; with `wait`, return once a commit holds it (synchronously on disk when
        `critical`). Without `wait`, an `urgent` row is committed by the background thread at
        once rather than after `linger`: its caller waits for it soon (`flush`) and does other
        work meanwhile, which the commit's fsync overlaps. Raises the writer's `error` when it is
        closed or the commit failed."""
        if self._pid != os.getpid():
            self._reset()
        with self._cond:
            if self._stopping:
                raise self._error_type(f"the writer of {self.what} to `{self.name}` is closed")
            # Backpressure only when the disk has stopped taking rows: the queue is bounded, and a
            # queued event is never dropped to make room.
            while len(self._queue) >= self.max_queued and not self._stopping:
                self._cond.wait(0.1)
            self._queue.append((row, critical))
            self._submitted += 1
            ticket = self._submitted
            if critical:
                self._last_critical = ticket
            if urgent:
                self._urgent_upto = ticket
            if not wait:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name=f"irgov-writer[{self.name}]")
                    self._thread.start()
                self._cond.notify_all()
                return
            while self._committed < ticket:
                if self._failed_upto >= ticket or self._abandon:
                    raise self._error_type(f"cannot commit {self.what} to `{self.name}`: {self._error or 'closed'}")
                if self._committing:
                    self._cond.wait()
                else:
                    self._commit_queue()

    def flush(self, timeout: float | None = None, *, critical_only: bool = False) -> bool:
        """Wait until every row queued before this call is committed (with `critical_only`, every
        row up to the last critical one: the rest keeps lingering); False on timeout."""
        if self._pid != os.getpid():
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._last_critical if critical_only else self._submitted
            while self._committed < target:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                if self._committing or self._failed_upto > self._committed:
                    self._cond.wait(left)  # a failing batch is the thread's to retry
                else:
                    self._commit_queue()
        return True

    def holds(self, match: Callable[[Row], bool]) -> bool:
        """Whether a row for which `match` is true is queued and not yet committed."""
        if self._pid != os.getpid():
            return False
        with self._cond:
            return any(match(row) for row, _ in self._queue)

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self, timeout: float = 5.0) -> bool:
        """Drain the queue (at most `timeout` seconds) and stop the thread; True when nothing was
        left behind. What could not be committed is logged with its count."""
        if self._pid != os.getpid():
            return True
        with self._cond:
            self._stopping = True
            thread = self._thread
            self._cond.notify_all()
        drained = self.flush(timeout)
        with self._cond:
            self._abandon = True
            left = len(self._queue)
            self._cond.notify_all()
            conns, self._conns = self._conns, []
        if thread is not None:
            thread.join(timeout=1.0)
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        if left:
            self.lost += left
            logger.error("`%s` closed with %d %s not committed: %s", self.name, left, self.what, self._error)
        _LIVE.discard(self)
        return drained and not left

    # -- committing --------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            self._local.full = None
            self._conns.append(conn)
        return conn

    def _commit_queue(self) -> bool:
        """Commit the head of the queue on this thread's connection. Called with the lock held
        and no commit under way; the lock is released during the write."""
        batch = self._queue[:self.max_batch]
        critical = any(c for _, c in batch)
        self._committing = True
        error: BaseException | None = None
        self._cond.release()
        try:
            conn = self._connection()
            if self._local.full != critical:
                conn.execute("PRAGMA synchronous=FULL" if critical else "PRAGMA synchronous=NORMAL")
                self._local.full = critical
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._write_batch(conn, [row for row, _ in batch])
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            error = exc
        finally:
            self._cond.acquire()
            self._committing = False
        if error is not None:
            logger.warning("cannot commit %d %s to `%s`, retrying: %s", len(batch), self.what, self.name, error)
            self._error = error
            self._failed_upto = self._committed + len(batch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name=f"irgov-writer[{self.name}]")
                self._thread.start()
            self._cond.notify_all()
            return False
        del self._queue[:len(batch)]
        self._committed += len(batch)
        self.commits += 1
        self._cond.notify_all()
        callback = self.on_commit
        if callback is not None:
            try:
                callback()
            except Exception:  # a courtesy (waking the relay, which polls anyway)
                logger.debug("commit callback failed", exc_info=True)
        return True

    def _run(self) -> None:
        pause = 0.0
        with self._cond:
            while True:
                while (not self._queue or self._committing) and not self._abandon:
                    if self._stopping and not self._queue:
                        return
                    self._cond.wait()
                if self._abandon:
                    return
                if pause:
                    self._cond.wait(pause)
                    if self._abandon:
                        return
                    if self._committing or not self._queue:
                        continue
                elif self.linger and not self._stopping:
                    self._linger()
                    if self._abandon:
                        return
                    if self._committing or not self._queue:
                        continue
                pause = 0.0 if self._commit_queue() else min(1.0, max(0.01, pause * 2))


    def _linger(self) -> None:
        # Rows nobody waits for gather for a few milliseconds, so that a busy process commits
        # them in tens per transaction rather than one or two (each commit costs CPU the
        # deciding threads share). A waiting publisher or a flush commits at once, as leader.
        deadline = time.monotonic() + self.linger
        while not self._stopping and not self._abandon and len(self._queue) < self.max_batch:
            if self._urgent_upto > self._committed:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)


def flush_writers_of(name: str, timeout: float) -> bool:
    """Flush every writer of this process to the file `name` (the stores opened on one file are
    separate objects, and a reader of one must see what the others wrote)."""
    done = True
    for writer in list(_LIVE):
        if writer.name == name:
            done = writer.flush(timeout) and done
    return done


@atexit.register
def _drain_at_exit() -> None:
    """A clean interpreter exit commits what is still queued (the writer threads are daemons and
    are still running while `atexit` handlers run)."""
    for writer in list(_LIVE):
        writer.close(timeout=5.0)
