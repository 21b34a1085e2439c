"""The HTTP face of the kernel (extra `http`): a FastAPI router for hosts, a standalone app for
`irgov serve`, API-key authentication and RFC 9457 problem details."""

from .app import create_app
from .auth import ALL_TENANTS, ApiKeyAuth, Authenticator, Principal, Role, hash_api_key
from .problems import PROBLEM_MEDIA_TYPE, ProblemDetails, ProblemError, ProblemRoute
from .router import create_router

__all__ = [
    "ALL_TENANTS",
    "PROBLEM_MEDIA_TYPE",
    "ApiKeyAuth",
    "Authenticator",
    "Principal",
    "ProblemDetails",
    "ProblemError",
    "ProblemRoute",
    "Role",
    "create_app",
    "create_router",
    "hash_api_key",
]
