"""Storage plumbing shared by every backend: the store-address type and the Redis client factory.

Below the services (DESIGN.md): it knows addresses and connections, not approvals or events."""

from .redis_client import CONNECT_TIMEOUT, HEALTH_CHECK_INTERVAL, SOCKET_TIMEOUT, redis_client, redis_error
from .url import REDIS_SCHEMES, StoreURL, redact

__all__ = [
    "CONNECT_TIMEOUT",
    "HEALTH_CHECK_INTERVAL",
    "REDIS_SCHEMES",
    "SOCKET_TIMEOUT",
    "StoreURL",
    "redact",
    "redis_client",
    "redis_error",
]
