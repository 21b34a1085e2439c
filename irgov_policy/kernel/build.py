"""Building every part of the kernel from one `GovernanceConfig`.

This is the one wiring path: `Governance.from_config` and every face that needs only a part
(a CLI verb that decides, hashes or lists approvals) call these builders, so a setting means
the same thing wherever it is read.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..approvals import ApprovalService, KeyRing, load_keyring, open_store
from ..approvals.keyfile import default_key_file, load_or_create_key_file
from ..approvals.ledger_records import Ledger
from ..approvals.store import ApprovalStore
from ..config import GovernanceConfig, load_config
from ..errors import ApprovalKeyError, ConfigError, StoreError
from ..events import EventBus, Outbox
from ..events.config import sink_factories, sink_from_url
from ..events.sinks.notify import NOTIFY_FORMATS, NotifySink
from ..hashing import HashRegistry, default_registry
from ..model import InputLimits
from ..policy.evaluator import PolicyEngine
from ..policy.pack import RulePack, load_pack
from ..policy.plugin_hooks import collect_rule_pack_paths
from ..policy.shipped import baseline_pack_path
from ..policy.sources import PackTrust, load_pack_sources
from ..storage import StoreURL

__all__ = [
    "KernelParts",
    "build_approvals",
    "build_bus",
    "build_engine",
    "build_keyring",
    "build_ledger",
    "build_limits",
    "build_parts",
    "build_registry",
    "build_trust",
    "compose_engine",
    "prove_engine",
    "resolve_config",
]

logger = logging.getLogger(__name__)


def resolve_config(config: GovernanceConfig | str | os.PathLike[str] | None = None, *,
                   environ: Mapping[str, str] | None = None, **overrides: Any) -> GovernanceConfig:
    """A `GovernanceConfig` as given, or loaded from a file, or (None) the embedded defaults plus
    `IRGOV_*` variables; `overrides` (flags) win over both."""
    if isinstance(config, GovernanceConfig):
        return config.with_overrides(**overrides) if overrides else config
    return load_config(config, environ=environ, **overrides)


def build_registry(config: GovernanceConfig) -> HashRegistry:
    """The hash backends, checked against `hash_algorithm` and `allowed_algorithms`: a kernel that
    hashes with an algorithm it then refuses would deny every approval, so say so at start-up."""
    registry = default_registry()
    known = ", ".join(f"`{n}`" for n in registry.names())
    for setting, names in (("hash_algorithm", (config.hash_algorithm,)), ("allowed_algorithms", config.allowed_algorithms)):
        for name in names:
            if name not in registry:
                raise ConfigError(f"`{setting}` names unknown hash algorithm `{name}`: known are {known}")
    if config.hash_algorithm not in config.allowed_algorithms:
        raise ConfigError(f"`hash_algorithm` `{config.hash_algorithm}` is not one of `allowed_algorithms`")
    return registry


def build_keyring(config: GovernanceConfig, *, create: bool = True) -> KeyRing:
    """The server key that digests approval tokens: the configured key or key file; on an
    embedded SQLite store, the key file beside it (made once; with `create=False`, only read, so
    consuming on a store that never minted a token leaves no key behind); on `memory://`, a key
    that lives as long as the process. A shared store without a configured key is refused."""
    if config.approval_key:
        return KeyRing.parse(config.approval_key, where="`approval_key`")
    if config.approval_key_file:
        return load_keyring(key_file=config.approval_key_file)
    scheme = StoreURL.parse(config.approval_store, what="approval store").scheme
    if scheme == "memory":
        return KeyRing.generate("k1")  # nothing outlives the process, not even the key
    if scheme != "sqlite":
        raise ApprovalKeyError(
            f"the approval store `{scheme}` is shared by several hosts: set `IRGOV_APPROVAL_KEY` or "
            "`approval_key_file` to the same key on every host")
    path = default_key_file(config.approval_store)
    if not create:
        return load_keyring(key_file=path if path.exists() else None)
    return load_or_create_key_file(path)


def build_trust(config: GovernanceConfig) -> PackTrust:
    """Which pack bundles may be loaded: `require_signed_packs` and `trusted_pack_keys`."""
    return PackTrust.from_settings(config.require_signed_packs, config.trusted_pack_keys)


def compose_engine(config: GovernanceConfig, packs: Sequence[RulePack]) -> PolicyEngine:
    """The policy engine for `packs` (loaded from `packs` sources) plus the shipped baseline when
    no source is configured and the plugins' packs with `plugin_packs`; `engine`, the decision
    budget, `hash_algorithm` and the input limits."""
    chosen = list(packs)
    if not config.packs:
        chosen.append(load_pack(baseline_pack_path()))
    if config.plugin_packs:
        chosen += [load_pack(p) for p in collect_rule_pack_paths()]
    engine = PolicyEngine.from_packs(chosen, config.engine, budget_ms=config.decision_budget_ms,
                                     hash_algorithm=config.hash_algorithm)
    engine.limits = build_limits(config)
    return engine


def build_limits(config: GovernanceConfig) -> InputLimits:
    """The input limits (`max_bytes`, `max_depth`, `max_steps`, `strict_timestamps`) every IR is
    parsed under."""
    return InputLimits(max_bytes=config.max_bytes, max_depth=config.max_depth, max_steps=config.max_steps,
                       strict_timestamps=config.strict_timestamps)


def build_engine(config: GovernanceConfig) -> PolicyEngine:
    """The policy engine of the configuration, its bundles verified under `build_trust`."""
    return compose_engine(config, load_pack_sources(config.packs, trust=build_trust(config)))


def prove_engine(config: GovernanceConfig, sources: Sequence[str] | None = None) -> PolicyEngine:
    """A candidate engine for a reload: loaded, linted and its policy tests run
    (`irgov_policy.policy.candidate`); `sources` defaults to `packs`."""
    from ..policy.candidate import prove_candidate  # lint and tests load every CEL engine: only for a reload

    chosen = tuple(config.packs if sources is None else sources)
    return prove_candidate(chosen, lambda packs: compose_engine(replace(config, packs=chosen), packs),
                           trust=build_trust(config), engine=config.engine)


def build_bus(config: GovernanceConfig, sinks: Sequence[Any] = (), *, outbox: Outbox | None = None,
              autostart: bool = True) -> EventBus:
    """The event bus with the sinks of `event_sinks`, the extra sink objects `sinks`, and the
    configured outbox (or `outbox`, already opened: the command line falls back to memory when
    the configured one cannot be opened). `autostart=False` leaves the relay stopped, for
    commands that only inspect the outbox."""
    factories = sink_factories() if config.event_sinks else {}
    all_sinks = [*(sink_from_url(url, factories) for url in config.event_sinks), *sinks]
    if config.notify_webhooks:
        all_sinks.append(NotifySink(config.notify_webhooks, form=config.notify_format))
    elif config.notify_format not in NOTIFY_FORMATS:
        raise ConfigError(f"`notify_format` must be one of {', '.join(NOTIFY_FORMATS)}, not `{config.notify_format}`")
    return EventBus(all_sinks, outbox=outbox if outbox is not None else config.outbox,
                    retention_seconds=config.event_retention_days * 86400,
                    lease_seconds=config.relay_lease_seconds, autostart=autostart)


def build_approvals(config: GovernanceConfig, *, bus: EventBus | None = None, keyring: KeyRing | None = None,
                    registry: HashRegistry | None = None, needs_key: bool = True,
                    create_key: bool = True) -> ApprovalService:
    """The approval service on the configured store. A store that keeps its own outbox (Redis)
    has it attached to `bus`, so its events are delivered with the others. With
    `needs_key=False` and no key configured, the service only reads and revokes (it cannot
    create or consume), so a shared store can be inspected without its key. `create_key` is
    passed to `build_keyring`."""
    if keyring is None and (needs_key or config.approval_key or config.approval_key_file):
        keyring = build_keyring(config, create=create_key)
    registry = registry if registry is not None else build_registry(config)
    store = open_store(config.approval_store, retention_seconds=int(config.approval_retention_days * 86400),
                       timeout=config.store_timeout, require_durable_redis=config.require_durable_redis)
    try:
        _repair(store)
        if bus is not None and store.outbox_url:
            bus.attach_outbox(store.outbox_url)
        return ApprovalService(
            store, keyring, bus=bus,
            default_ttl=_whole(config.approval_default_ttl), max_ttl=_whole(config.approval_max_ttl),
            max_mismatches=config.approval_max_mismatches,
            retention_seconds=config.approval_retention_days * 86400,
            allowed_algorithms=config.allowed_algorithms, registry=registry,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            store.close()
        raise


def _repair(store: ApprovalStore) -> None:
    """Start-up repair of what a crash of an earlier layout left half-done. A store that does not
    answer yet is not a start-up failure (requests then fail with their own message): the
    repair runs again at the next start."""
    try:
        repaired = store.repair()
    except StoreError as exc:
        logger.warning("the approval store could not be checked for half-done grants: %s", exc)
        return
    if repaired:
        logger.warning("repaired %d approval requests left half-done by a crash", repaired)


def build_ledger(approvals: ApprovalService) -> Ledger:
    """The kernel's ledger of decisions and approval requests: in the approval store's own
    database, so a grant is one transaction of that store."""
    return approvals.store.ledger


@dataclass(frozen=True)
class KernelParts:
    """Everything a `Governance` is made of, built from one configuration."""

    config: GovernanceConfig
    registry: HashRegistry
    engine: PolicyEngine
    bus: EventBus
    approvals: ApprovalService
    ledger: Ledger


def build_parts(config: GovernanceConfig, *, sinks: Sequence[Any] = ()) -> KernelParts:
    """Build every part, in the order that reports a configuration mistake before anything is
    opened; when one part fails, those already opened are closed again."""
    registry = build_registry(config)
    keyring = build_keyring(config)
    engine = build_engine(config)
    bus: EventBus | None = None
    approvals: ApprovalService | None = None
    try:
        bus = build_bus(config, sinks)
        approvals = build_approvals(config, bus=bus, keyring=keyring, registry=registry)
        ledger = build_ledger(approvals)
    except BaseException:
        for part in (approvals.store if approvals is not None else None, bus):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        raise
    return KernelParts(config, registry, engine, bus, approvals, ledger)


def _whole(seconds: float) -> int | float:
    """Configuration numbers are floats; the approval service keeps whole seconds as ints."""
    return int(seconds) if float(seconds).is_integer() else seconds
