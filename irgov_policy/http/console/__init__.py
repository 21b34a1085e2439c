"""The approvals console: server-rendered pages of the router, under `/console`.

`create_console_router(governance)` is what `create_router` includes, so a host that mounts the
router gets the console under its prefix and `irgov serve` serves it. Jinja2 templates and one
small script (no inline script, no build step, no CDN) ship in the wheel; sessions live beside
the approval store (see `sessions`).
"""

from __future__ import annotations

from fastapi import APIRouter

from ...kernel import Governance
from .pages import ConsoleSettings, build_console_router
from .sessions import SessionStore, open_sessions

__all__ = ["ConsoleSettings", "create_console_router"]


def create_console_router(governance: Governance, *, settings: ConsoleSettings | None = None,
                          sessions: SessionStore | None = None) -> APIRouter:
    """The console's routes over `governance` (include it with a prefix, `/console` in the router)."""
    store = sessions if sessions is not None else open_sessions(governance.config.approval_store)
    return build_console_router(governance, settings or ConsoleSettings(), store)
