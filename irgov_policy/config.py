"""One configuration for the whole kernel: defaults, then a YAML/TOML file, then `IRGOV_*` variables.

Embedded defaults need no server: the shipped baseline pack, a SQLite approval store and a SQLite
outbox under `./.irgov/`, sha256. Unknown keys and malformed values are refused with a
`ConfigError` naming the key and where it came from, so a typo never silently falls back to a
default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["ENV_PREFIX", "GovernanceConfig", "config_field_names", "load_config"]

ENV_PREFIX = "IRGOV_"


@dataclass(frozen=True)
class GovernanceConfig:
    """Every setting of the kernel. Field names are the configuration file's keys; the environment
    variable of a field is `IRGOV_` + its name in upper case (lists are comma-separated)."""

    packs: tuple[str, ...] = ()
    """rule pack files or folders; empty means the shipped baseline pack"""
    plugin_packs: bool = True
    """also use the packs plugins register"""
    require_signed_packs: bool = False
    """every entry of `packs` must be a bundle signed by one of `trusted_pack_keys`"""
    trusted_pack_keys: tuple[str, ...] = ()
    """public keys whose bundle signatures are accepted: `ed25519:BASE64` or PEM file paths"""
    watch_packs: bool = True
    """reload `packs` (and `shadow_packs`) when their files change, once the kernel is started"""
    shadow_packs: tuple[str, ...] = ()
    """a candidate pack set decided beside the active one on live traffic, never enforced"""
    decision_log: str | None = None
    """a JSONL file receiving every decision with its IR, for replay"""
    decision_log_redact: str = "params"
    """what the decision log leaves out: `none`, `params` (step parameter values) or `ir`"""
    engine: str = "auto"
    """CEL engine: auto, celpy or cel-cpp"""
    decision_budget_ms: float = 10_000.0
    hash_algorithm: str = "sha256"
    allowed_algorithms: tuple[str, ...] = ("sha256", "blake3")
    max_bytes: int = 8 * 1024 * 1024
    max_depth: int = 64
    max_steps: int = 10_000
    strict_timestamps: bool = False
    """refuse an IR `created_at` without offset instead of reading it as UTC"""
    approval_store: str = "sqlite:///./.irgov/approvals.db"
    store_timeout: float = 5.0
    """seconds a call waits on the approval store (SQLite busy lock, Redis command, PostgreSQL
    statement, lock or pooled connection) before it fails and the request is answered 503"""
    approval_key: str | None = None
    """`kid:secret[,kid:secret...]`, first is current; never logged"""
    approval_key_file: str | None = None
    approval_default_ttl: float = 3600.0
    approval_max_ttl: float = 7 * 86400.0
    approval_max_mismatches: int = 3
    approval_retention_days: float = 30.0
    consume_failure_limit: int = 20
    """failed consumes (invalid, mismatched or spent tokens) a tenant, or a principal, may make per
    window before its consumes are refused with 429"""
    consume_failure_window: float = 60.0
    """the window of `consume_failure_limit`, in seconds"""
    separation_of_duties: bool = True
    """the principal who submitted an IR cannot approve it"""
    require_node_content: bool = True
    """the execution gate refuses DAG nodes that carry only a claimed hash, not what they will run"""
    outbox: str = "sqlite:///./.irgov/outbox.db"
    event_sinks: tuple[str, ...] = ()
    notify_webhooks: tuple[str, ...] = ()
    """http(s) URLs told of new approval requests and of decisions on them (granted, denied or
    withdrawn, expired, consumed); delivered by the relay, off the request path"""
    notify_format: str = "json"
    """`json` (the notification as an object) or `slack` (a Slack-compatible `{"text": ...}`)"""
    event_retention_days: float = 7.0
    require_durable_redis: bool = False
    """refuse a Redis approval store whose server keeps no persistence (no RDB snapshots, no
    append-only file) or whose persistence cannot be read, instead of warning once"""
    relay_lease_seconds: float = 30.0
    """how long a relay holds a tenant's events for a sink before another relay may take them
    (the wait after a relay dies); longer than a sink's timeout"""
    api_keys: tuple[str, ...] = ()
    """`principal:role:tenant:key` entries for the standalone HTTP server; never logged"""
    metrics_public: bool = False
    """`GET /metrics` answers without credentials (a scraper on a private network); else admin keys only"""

    def __repr__(self) -> str:
        # Secrets stay out of reprs, logs and tracebacks.
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        for secret in ("approval_key", "api_keys"):
            if shown[secret]:
                shown[secret] = "<redacted>"
        return "GovernanceConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    def with_overrides(self, **overrides: Any) -> GovernanceConfig:
        return _apply(self, overrides, "argument")


_FIELDS = {f.name: f for f in fields(GovernanceConfig)}
_TUPLE_FIELDS = {name for name, f in _FIELDS.items() if str(f.type).startswith("tuple")}
_BOOL_FIELDS = {name for name, f in _FIELDS.items() if f.type == "bool"}
_INT_FIELDS = {name for name, f in _FIELDS.items() if f.type == "int"}
_FLOAT_FIELDS = {name for name, f in _FIELDS.items() if f.type == "float"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, value: Any, origin: str) -> Any:
    where = f"`{name}` in {origin}"
    if name in _TUPLE_FIELDS:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where} must be a list of strings")
    if name in _BOOL_FIELDS:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{where} must be true or false, not `{value}`")
    if name in _INT_FIELDS:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, not `{value}`")
        try:
            number = int(value) if not isinstance(value, float) else None
        except (TypeError, ValueError):
            number = None
        if number is None or number <= 0:
            raise ConfigError(f"{where} must be a positive integer, not `{value}`")
        return number
    if name in _FLOAT_FIELDS:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, not `{value}`")
        try:
            real = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, not `{value}`") from None
        if not (real > 0 and real != float("inf")):
            raise ConfigError(f"{where} must be a positive finite number, not `{value}`")
        return real
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    return value


def _apply(config: GovernanceConfig, values: Mapping[str, Any], origin: str) -> GovernanceConfig:
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown setting `{unknown[0]}` in {origin}")
    return replace(config, **{k: _coerce(k, v, origin) for k, v in values.items()})


def _read_file(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration `{path}`: {exc.strerror or exc}") from None
    try:
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"configuration `{path}` is not valid: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if isinstance(data, Mapping) and set(data) == {"irgov"}:
        data = data["irgov"]  # a section inside a larger application configuration
    if not isinstance(data, Mapping):
        raise ConfigError(f"configuration `{path}` must be a mapping of settings")
    return data


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> GovernanceConfig:
    """Defaults, then the file (`path`, else `IRGOV_CONFIG`), then `IRGOV_*` variables, then `overrides`."""
    env = os.environ if environ is None else environ
    config = GovernanceConfig()
    file_path = path if path is not None else env.get(ENV_PREFIX + "CONFIG")
    if file_path:
        config = _apply(config, _read_file(Path(file_path)), f"`{file_path}`")
    from_env = {
        name: env[ENV_PREFIX + name.upper()]
        for name in _FIELDS
        if ENV_PREFIX + name.upper() in env
    }
    if from_env:
        config = _apply(config, from_env, "the environment")
    if overrides:
        config = _apply(config, overrides, "arguments")
    return config


def config_field_names() -> list[str]:
    """Every setting name, for documentation and `irgov config` output."""
    return list(_FIELDS)

