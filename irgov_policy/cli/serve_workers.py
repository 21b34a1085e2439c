"""`irgov serve --workers N`: N uvicorn worker processes on one listening socket.

The workers share nothing but the configured stores, so any of them can serve any request: the
approval store and its ledger (SQLite file, Redis or PostgreSQL) and the outbox. The parent
resolves the configuration once (file, `IRGOV_*`, flags), builds the kernel once to fail in
one line before any worker starts (and to create the key file and schema once), then hands the
resolved configuration to the workers in a private file; `worker_app` is the factory uvicorn
imports in each worker. Metrics go to a multi-process folder that every worker writes and any
worker's `GET /metrics` adds up. The sweeper runs in the worker holding the store's lease.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import GovernanceConfig
from ..errors import ConfigError
from ..observability.metrics import MULTIPROC_ENV
from ..observability.scrape import clean_multiprocess_dir
from ..storage.url import StoreURL

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..policy import ReloadResult

logger = logging.getLogger(__name__)

__all__ = ["CONFIG_FILE_ENV", "WORKER_HEADER", "check_shared_stores", "name_the_worker", "prepare_metrics_dir", "prepare_workers", "run_workers",
           "worker_app"]

# Where a worker finds the configuration its parent resolved (not an `IRGOV_*` setting).
CONFIG_FILE_ENV = "_IRGOV_SERVE_CONFIG_FILE"
# Every answer of a worker names its process, so a client (or a test) sees which one served it.
WORKER_HEADER = "x-irgov-worker"


def check_shared_stores(config: GovernanceConfig, workers: int) -> None:
    """Several workers need stores they all share: `memory://` lives in one process."""
    if workers <= 1:
        return
    for setting, address in (("approval_store", config.approval_store), ("outbox", config.outbox)):
        text = address.strip()
        if text in ("memory:", "none", "") or StoreURL.parse(text, what=setting.replace("_", " ")).scheme == "memory":
            raise ConfigError(f"`--workers {workers}` needs stores every worker shares: `{setting}` is "
                              f"`{text or 'memory:'}`, which lives in one process (use `sqlite:///...`, "
                              "`redis://...` or `postgresql://...`)")


def prepare_metrics_dir(runtime: Path | None) -> Path | None:
    """The multi-process metrics folder, emptied: `PROMETHEUS_MULTIPROC_DIR` when the operator
    set it, else `metrics/` in the runtime folder (workers only). Set before any metric exists."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        return clean_multiprocess_dir(configured)
    if runtime is None:
        return None
    folder = clean_multiprocess_dir(runtime / "metrics")
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def prepare_workers(config: GovernanceConfig) -> Path:
    """A private runtime folder holding the resolved configuration for the workers (removed at
    exit), named to them by `CONFIG_FILE_ENV`."""
    runtime = Path(tempfile.mkdtemp(prefix="irgov-serve-"))  # mode 0700
    atexit.register(shutil.rmtree, runtime, ignore_errors=True)
    path = runtime / "config.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(asdict(config), handle)
    os.environ[CONFIG_FILE_ENV] = str(path)
    return runtime


def _worker_config() -> GovernanceConfig:
    path = os.environ.get(CONFIG_FILE_ENV)
    if not path:
        raise ConfigError(f"`{CONFIG_FILE_ENV}` is not set: workers are started by `irgov serve --workers N`")
    values: dict[str, Any] = json.loads(Path(path).read_text("utf-8"))
    return GovernanceConfig().with_overrides(**values)


def worker_app() -> FastAPI:
    """The application of one worker (uvicorn's `--factory` target)."""
    from ..http import create_app
    from ._common import keep_exception_causes

    keep_exception_causes()
    app = create_app(_worker_config())
    app.state.governance.pack_lifecycle.on_reload = _replace_the_other_workers
    return name_the_worker(app)


def _replace_the_other_workers(result: ReloadResult) -> None:
    """After `POST /packs/reload` put a new pack set in force in this worker, ask the supervisor
    (SIGHUP) to replace every worker: each new one loads the packs as they now are, so all of
    them decide with the set the caller was answered about. A failed reload changed nothing."""
    if result.trigger != "api" or not result.ok or not result.changed:
        return
    supervisor = os.getppid()
    logger.info("packs reloaded through the API (%s): asking the supervisor (pid %d) to replace every worker",
                result.new_digest, supervisor)
    os.kill(supervisor, signal.SIGHUP)


def name_the_worker(app: FastAPI) -> FastAPI:
    """Every answer of `app` names this process in `x-irgov-worker`."""
    from starlette.requests import Request
    from starlette.responses import Response

    pid = str(os.getpid())

    @app.middleware("http")
    async def add_worker_header(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers[WORKER_HEADER] = pid
        return response

    return app


def run_workers(host: str, port: int, workers: int, log_level: str) -> None:
    import uvicorn

    from .serve_protocol import NoDelayProtocol

    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(f"{__name__}:worker_app", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, http=NoDelayProtocol)
