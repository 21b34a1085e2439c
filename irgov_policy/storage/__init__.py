"""Storage plumbing shared by every backend: the store-address type, the Redis client factory and
the PostgreSQL connection settings (`postgres_client`, imported where used: psycopg is optional).

Below the services (DESIGN.md): it knows addresses and connections, not approvals or events."""

from .files import FILE_MODE, FOLDER_MODE, make_private_file, make_private_folder
from .redis_client import CONNECT_TIMEOUT, HEALTH_CHECK_INTERVAL, SOCKET_TIMEOUT, redis_client, redis_error
from .url import POSTGRES_SCHEMES, REDIS_SCHEMES, StoreURL, redact

__all__ = [
    "CONNECT_TIMEOUT",
    "FILE_MODE",
    "FOLDER_MODE",
    "HEALTH_CHECK_INTERVAL",
    "POSTGRES_SCHEMES",
    "REDIS_SCHEMES",
    "SOCKET_TIMEOUT",
    "StoreURL",
    "make_private_file",
    "make_private_folder",
    "redact",
    "redis_client",
    "redis_error",
]
