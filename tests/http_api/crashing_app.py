"""`irgov serve` that dies at the worst moment: `python crashing_app.py PORT`. Its approval
store commits a successful consume, then the process is killed (SIGKILL) before the answer is
written, as a crash, an OOM kill or a lost connection would leave it. Everything else is the
standard server, configured by `IRGOV_*` variables."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import uvicorn

from irgov_policy.http import create_app
from irgov_policy.kernel import Governance


class DiesAfterCommit:
    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def consume(self, *args: Any, **kwargs: Any) -> Any:
        outcome = self._store.consume(*args, **kwargs)
        if outcome.success:
            os.kill(os.getpid(), signal.SIGKILL)
        return outcome


if __name__ == "__main__":
    governance = Governance.from_config()
    governance.approvals.store = DiesAfterCommit(governance.approvals.store)
    uvicorn.run(create_app(governance=governance), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
