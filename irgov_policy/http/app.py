"""The standalone application: `create_app(config)` is what `irgov serve` runs."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._version import __version__
from ..config import GovernanceConfig
from ..kernel import Governance
from .auth import ApiKeyAuth, Authenticator
from .problems import ProblemDetails, problem_from_exception, problem_response
from .router import create_router

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(config: GovernanceConfig | str | os.PathLike[str] | None = None, *,
               governance: Governance | None = None, auth: Authenticator | None = None,
               prefix: str = "") -> FastAPI:
    """A FastAPI application serving the router at `prefix`. The kernel is built from `config`
    (or the embedded defaults) unless one is passed; it is started and closed with the app."""
    gov = governance if governance is not None else Governance.from_config(config)
    owned = governance is None
    if auth is None and not gov.config.api_keys:
        logger.warning("no api keys are configured (`IRGOV_API_KEYS`): every request but /health is refused")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gov.astart()
        try:
            yield
        finally:
            if owned:
                await gov.aclose()
            else:
                await gov.astop()

    app = FastAPI(title="irgov", version=__version__, lifespan=lifespan,
                  description="Governance for AI pipeline plans: validate, approve, authorize, audit.")
    app.state.governance = gov
    app.include_router(create_router(gov, auth=auth if auth is not None else ApiKeyAuth(gov.config.api_keys)),
                       prefix=prefix)

    async def as_problem(request: Request, exc: Exception) -> Response:
        return problem_response(problem_from_exception(exc), request.url.path)

    # Routes outside the router (unknown paths, wrong methods) answer with problems too.
    app.add_exception_handler(StarletteHTTPException, as_problem)
    app.add_exception_handler(RequestValidationError, as_problem)

    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original_openapi()
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["ProblemDetails"] = ProblemDetails.model_json_schema(
                ref_template="#/components/schemas/{model}")
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer",
                                                         "description": "an api key"}}
            for path, operations in schema.get("paths", {}).items():
                for operation in operations.values():
                    if not path.endswith("/health"):
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
