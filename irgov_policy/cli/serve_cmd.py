"""`irgov serve`: the HTTP API with uvicorn, on the configuration (`--config`, `IRGOV_*`, flags).

SIGHUP reloads the rule packs (proved first; the set in force stays when the new one fails),
in a thread of its own so the server keeps answering meanwhile. It never stops the server.
With `--workers N` (N > 1, `serve_workers.py`) uvicorn's supervisor owns SIGHUP: it replaces
the workers one by one, each loading the packs as they now are, and keeps a worker whose
replacement does not start.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ..errors import IrgovError, PluginError
from ._common import fail, keep_exception_causes
from .options import command_config, config_option, engine_option, outbox_option, packs_option, store_option
from .serve_workers import (
    check_shared_stores,
    name_the_worker,
    prepare_metrics_dir,
    prepare_workers,
    run_workers,
)

if TYPE_CHECKING:
    from ..config import GovernanceConfig
    from ..kernel import Governance

__all__ = ["serve_command"]

logger = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="port to listen on")
@config_option
@packs_option
@engine_option
@store_option
@outbox_option
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="worker processes sharing the port; they share state through the configured stores only "
                   "(memory:// is refused), and the one holding the store's lease runs the sweeper")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve_command(host: str, port: int, workers: int, log_level: str) -> None:
    """Serve the HTTP API (validate, approvals, authorize, diff audit), built from the same
    configuration as every other verb. SIGHUP reloads the rule packs."""
    config = command_config()
    try:
        import uvicorn

        from ..http import create_app
    except ImportError as exc:
        fail(f"`irgov serve` needs the `http` extra: pip install 'irgov-policy[http]' ({exc.name} is missing)")
    try:
        check_shared_stores(config, workers)
    except IrgovError as exc:
        fail(str(exc))
    # Before the first metric exists, in this process and (inherited) in the workers.
    prepare_metrics_dir(prepare_workers(config) if workers > 1 else None)
    if workers > 1:
        _serve_workers(config, host, port, workers, log_level)
        return
    # Installed before the kernel is built: a SIGHUP while starting must not end the process.
    bind_kernel = _reload_on_hangup()
    try:
        app = create_app(config)
    except PluginError:
        raise  # one line naming the plugin, the same as in every other command
    except IrgovError as exc:
        fail(f"cannot start: {exc}")
    if not app.state.governance.config.api_keys:
        click.echo("irgov: warning: no api keys configured (IRGOV_API_KEYS): only /health will answer", err=True)
    name_the_worker(app)
    bind_kernel(app.state.governance)
    keep_exception_causes()
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def _serve_workers(config: GovernanceConfig, host: str, port: int, workers: int, log_level: str) -> None:
    # Built once here: a bad configuration is one line before any worker starts, and the key
    # file and schema are created by one process rather than raced for by N.
    from ..kernel import Governance

    try:
        kernel = Governance.from_config(config)
    except PluginError:
        raise
    except IrgovError as exc:
        fail(f"cannot start: {exc}")
    kernel.close()
    if not config.api_keys:
        click.echo("irgov: warning: no api keys configured (IRGOV_API_KEYS): only /health will answer", err=True)
    run_workers(host, port, workers, log_level)


def _reload_on_hangup() -> Callable[[Governance], None]:
    """Handle SIGHUP from now on; the returned function binds the handler to the kernel once built
    (until then a SIGHUP is ignored with a warning)."""
    kernel: list[Governance] = []
    if not hasattr(signal, "SIGHUP"):  # pragma: no cover - Windows has no SIGHUP
        return kernel.append

    def on_hangup(signum: int, frame: object) -> None:
        if not kernel:
            logger.warning("SIGHUP ignored: the server is still starting")
            return
        threading.Thread(target=kernel[0].reload_packs, kwargs={"by": "SIGHUP", "trigger": "signal"},
                         name="irgov-sighup-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hangup)
    return kernel.append
