"""irgov_policy: the governance kernel that decides whether an AI pipeline may execute a plan.

The public API is this module's `__all__`; everything else lives in private modules and may
change. Names are imported lazily so that `import irgov_policy` (and the CLI's cold start) pays
only for what is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .approvals import Approval, ApprovalService, ApprovalStatus, ConsumeResult, open_store
    from .audit import DiffAuditResult, audit, dag_nodes
    from .config import GovernanceConfig, load_config
    from .errors import (
        ApprovalError,
        ConfigError,
        DigestError,
        EventError,
        HashBackendError,
        InvalidTTLError,
        IrgovError,
        IRInputError,
        PackLoadError,
        PluginError,
        PolicyError,
        StoreError,
    )
    from .events import Event, EventBus, EventType, MemorySink, new_event
    from .hashing import HashBackend, canonical_bytes, dag_hash, ir_hash, step_hash, verify_digest
    from .hookspecs import hookimpl
    from .kernel import Clearance, Governance
    from .model import IR, InputLimits, Step, load_ir, parse_ir
    from .policy import Decision, Finding, PolicyEngine

__all__ = [
    "Approval",
    "ApprovalError",
    "ApprovalService",
    "ApprovalStatus",
    "Clearance",
    "ConfigError",
    "ConsumeResult",
    "Decision",
    "DiffAuditResult",
    "DigestError",
    "Event",
    "EventBus",
    "EventError",
    "EventType",
    "Finding",
    "Governance",
    "GovernanceConfig",
    "HashBackend",
    "HashBackendError",
    "IR",
    "IRInputError",
    "InputLimits",
    "InvalidTTLError",
    "IrgovError",
    "MemorySink",
    "PackLoadError",
    "PluginError",
    "PolicyEngine",
    "PolicyError",
    "Step",
    "StoreError",
    "__version__",
    "audit",
    "canonical_bytes",
    "dag_hash",
    "dag_nodes",
    "hookimpl",
    "ir_hash",
    "load_config",
    "load_ir",
    "new_event",
    "open_store",
    "parse_ir",
    "step_hash",
    "verify_digest",
]

_WHERE = {
    "Approval": "approvals",
    "ApprovalService": "approvals",
    "ApprovalStatus": "approvals",
    "ConsumeResult": "approvals",
    "open_store": "approvals",
    "DiffAuditResult": "audit",
    "audit": "audit",
    "dag_nodes": "audit",
    "GovernanceConfig": "config",
    "load_config": "config",
    "ApprovalError": "errors",
    "ConfigError": "errors",
    "DigestError": "errors",
    "EventError": "errors",
    "HashBackendError": "errors",
    "IRInputError": "errors",
    "InvalidTTLError": "errors",
    "IrgovError": "errors",
    "PackLoadError": "errors",
    "PluginError": "errors",
    "PolicyError": "errors",
    "StoreError": "errors",
    "Event": "events",
    "EventBus": "events",
    "EventType": "events",
    "MemorySink": "events",
    "new_event": "events",
    "HashBackend": "hashing",
    "canonical_bytes": "hashing",
    "dag_hash": "hashing",
    "ir_hash": "hashing",
    "step_hash": "hashing",
    "verify_digest": "hashing",
    "hookimpl": "hookspecs",
    "Clearance": "kernel",
    "Governance": "kernel",
    "IR": "model",
    "InputLimits": "model",
    "Step": "model",
    "load_ir": "model",
    "parse_ir": "model",
    "Decision": "policy",
    "Finding": "policy",
    "PolicyEngine": "policy",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module `irgov_policy` has no attribute `{name}`")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
