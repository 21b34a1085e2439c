"""Store addresses: the one parser of `memory://`, `sqlite:///...`, `redis://...` and
`postgresql://...` addresses.

Every approval store, ledger, outbox, outbox source, Redis sink and key-file location reads its
address through `StoreURL.parse`, so one address names one place everywhere. The convention is
SQLAlchemy's: after `sqlite://` comes an empty host and a `/`, then the path, so

- `sqlite:///data/x.db` is `data/x.db` relative to the working directory,
- `sqlite:////var/lib/x.db` is the absolute `/var/lib/x.db`,

and `redis://[user:password@]host[:port][/db][?options]` (`rediss://` for TLS) names a Redis
server and database; each user of a Redis address checks the options it understands.
`postgresql://[user[:password]@]host[:port]/dbname[?options]` (or `postgres://`) names a PostgreSQL
database, libpq's URI form; the store checks its options (`schema` and a few libpq ones).

A scheme is one entry of `_SCHEMES`: adding a backend (PostgreSQL, say) means adding its parser
there, and its opener where addresses are opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import StoreError

__all__ = ["POSTGRES_SCHEMES", "REDIS_SCHEMES", "StoreURL", "redact"]

REDIS_SCHEMES = frozenset({"redis", "rediss"})
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})
_REDACTED = "***"


@dataclass(frozen=True)
class StoreURL:
    """A parsed store address. Build it with `StoreURL.parse`; `str()` gives it back with any
    password replaced by `***` (safe for logs and messages), `secret_text()` with the password."""

    scheme: str
    text: str = field(repr=False)
    path: Path | None = None
    host: str | None = None
    port: int | None = None
    database: int | None = None
    #: the database name of a `postgresql://` address
    database_name: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, text: object, *, what: str = "store") -> StoreURL:
        """Parse `text`; a `StoreError` naming the (redacted) address and what is wrong otherwise.
        `what` names the address in messages (`store`, `outbox`, `redis sink`...)."""
        if isinstance(text, StoreURL):
            return text
        if not isinstance(text, str) or "://" not in text:
            shown = text if isinstance(text, str) else type(text).__name__
            raise StoreError(f"{what} address `{redact(str(shown))}` must look like `memory://`, "
                             "`sqlite:///relative.db`, `sqlite:////absolute.db`, `redis://host:port/db` "
                             "or `postgresql://host:port/dbname`")
        scheme = text.split("://", 1)[0].lower()
        parser = _SCHEMES.get(scheme)
        if parser is None:
            known = ", ".join(f"`{s}`" for s in sorted(_SCHEMES))
            raise StoreError(f"{what} address `{redact(text)}` has unknown scheme `{scheme}`: use {known}")
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - urlsplit checks the port lazily
        except ValueError as exc:
            raise StoreError(f"{what} address `{redact(text)}` is malformed: {exc}") from None
        return parser(parts, text, what)

    # -- views ---------------------------------------------------------------------------------

    def __str__(self) -> str:
        return redact(self.text)

    @property
    def is_redis(self) -> bool:
        return self.scheme in REDIS_SCHEMES

    @property
    def is_postgres(self) -> bool:
        return self.scheme in POSTGRES_SCHEMES

    def secret_text(self) -> str:
        """The address as written, password included: for building a client, never for messages."""
        return self.text

    def sqlite_path(self) -> Path:
        """The file of a `sqlite://` address, relative to the working directory unless absolute."""
        if self.scheme != "sqlite" or self.path is None:
            raise StoreError(f"address `{self}` does not name a sqlite file")
        return self.path

    def server_text(self) -> str:
        """A Redis address without its options, password included (what a client connects to)."""
        parts = urlsplit(self.text)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

    def without_options(self, names: Iterable[str]) -> str:
        """The address as written, password included, minus the options `names` (those this
        package reads itself, so that a client library is handed only its own)."""
        parts = urlsplit(self.text)
        drop = set(names)
        kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in drop]
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), ""))

    def check_options(self, known: Iterable[str], *, what: str) -> Mapping[str, str]:
        """The options, after refusing any not in `known` with a message listing those known."""
        allowed = sorted(set(known))
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            listed = ", ".join(f"`{u}`" for u in unknown)
            hint = (": known are " + ", ".join(f"`{k}`" for k in allowed)) if allowed else ": it takes no options"
            raise StoreError(f"unknown {what} option {listed} in `{self}`{hint}")
        return self.options

    @classmethod
    def for_sqlite_file(cls, path: str | Path) -> StoreURL:
        """The address of a file: `sqlite:////abs` for an absolute path, `sqlite:///rel` otherwise."""
        text = str(path)
        # Built, not parsed: a file name may hold `?` or `#`, which an address would read as options.
        return cls("sqlite", "sqlite:///" + text, path=Path(text))


def redact(text: str) -> str:
    """`text` with the password of a `scheme://user:password@host` address replaced by `***`."""
    head, sep, rest = text.partition("://")
    if not sep:
        return text
    netloc, slash, tail = rest.partition("/")
    user, at, host = netloc.rpartition("@")
    if not at or ":" not in user:
        return text
    name = user.split(":", 1)[0]
    return f"{head}://{name}:{_REDACTED}@{host}{slash}{tail}"


def _options(parts: SplitResult, text: str, what: str) -> Mapping[str, str]:
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise StoreError(f"{what} address `{redact(text)}` has malformed options `{parts.query}`") from None
    options: dict[str, str] = {}
    for name, value in pairs:
        if name in options:
            raise StoreError(f"{what} address `{redact(text)}` repeats option `{name}`")
        options[name] = value
    return MappingProxyType(options)


def _parse_memory(parts: SplitResult, text: str, what: str) -> StoreURL:
    if parts.netloc or parts.path not in ("", "/"):
        raise StoreError(f"{what} address `{redact(text)}` must be `memory://` (options after `?`)")
    return StoreURL("memory", text, options=_options(parts, text, what))


def _parse_sqlite(parts: SplitResult, text: str, what: str) -> StoreURL:
    # urlsplit keeps `//` at the start of the path of `sqlite:////abs`, so the path after the
    # single separating `/` is exactly what follows `sqlite:///`.
    if parts.netloc:
        raise StoreError(f"{what} address `{redact(text)}` names a host: use `sqlite:///relative.db` "
                         "or `sqlite:////absolute.db`")
    rest = text.split("://", 1)[1]
    if not rest.startswith("/"):
        raise StoreError(f"{what} address `{text}` must be `sqlite:///relative.db` or `sqlite:////absolute.db`")
    raw = rest[1:].split("?", 1)[0].split("#", 1)[0]
    if not raw or raw.endswith("/"):
        raise StoreError(f"{what} address `{text}` names no file: use `sqlite:///relative.db` "
                         "or `sqlite:////absolute.db`")
    if parts.fragment:
        raise StoreError(f"{what} address `{text}` has a fragment `#{parts.fragment}`")
    return StoreURL("sqlite", text, path=Path(raw), options=_options(parts, text, what))


def _parse_redis(parts: SplitResult, text: str, what: str) -> StoreURL:
    if not parts.hostname:
        raise StoreError(f"{what} address `{redact(text)}` names no host: use `redis://host:port/db`")
    db_text = parts.path.lstrip("/")
    if parts.path.count("/") > 1 or (db_text and not db_text.isdigit()):
        raise StoreError(f"{what} address `{redact(text)}`: the database after the host must be a number, "
                         f"not `{db_text}`")
    if parts.fragment:
        raise StoreError(f"{what} address `{redact(text)}` has a fragment `#{parts.fragment}`")
    return StoreURL(parts.scheme.lower(), text, host=parts.hostname, port=parts.port or 6379,
                    database=int(db_text) if db_text else 0, username=parts.username or None,
                    password=parts.password, options=_options(parts, text, what))


def _parse_postgres(parts: SplitResult, text: str, what: str) -> StoreURL:
    if not parts.hostname:
        raise StoreError(f"{what} address `{redact(text)}` names no host: use `postgresql://host:port/dbname`")
    name = parts.path.lstrip("/")
    if not name or "/" in name:
        raise StoreError(f"{what} address `{redact(text)}` must name one database after the host: "
                         "use `postgresql://host:port/dbname`")
    if parts.fragment:
        raise StoreError(f"{what} address `{redact(text)}` has a fragment `#{parts.fragment}`")
    return StoreURL(parts.scheme.lower(), text, host=parts.hostname, port=parts.port or 5432,
                    database_name=name, username=parts.username or None, password=parts.password,
                    options=_options(parts, text, what))


_SCHEMES: dict[str, Callable[[SplitResult, str, str], StoreURL]] = {
    "memory": _parse_memory,
    "sqlite": _parse_sqlite,
    "redis": _parse_redis,
    "rediss": _parse_redis,
    "postgresql": _parse_postgres,
    "postgres": _parse_postgres,
}
