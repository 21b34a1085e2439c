"""irgov_policy: the governance kernel that decides whether an AI pipeline may execute a plan.

The public API is this module's `__all__`, derived from `_WHERE` (each public name and the module
that defines it); everything else lives in private modules and may change. Names are imported
lazily so that `import irgov_policy` (and the CLI's cold start) pays only for what is used. The
imports under TYPE_CHECKING exist for type checkers only; a test holds them to `_WHERE`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

if TYPE_CHECKING:
    # `X as X` marks an explicit re-export for type checkers (mypy --strict, ruff).
    from .approvals import Approval as Approval
    from .approvals import ApprovalPage as ApprovalPage
    from .approvals import ApprovalService as ApprovalService
    from .approvals import ApprovalStatus as ApprovalStatus
    from .approvals import ApprovalStore as ApprovalStore
    from .approvals import ApprovalToken as ApprovalToken
    from .approvals import ConsumeResult as ConsumeResult
    from .approvals import open_store as open_store
    from .approvals.ledger_records import ApprovalRequest as ApprovalRequest
    from .approvals.records import ApprovalRecord as ApprovalRecord
    from .approvals.records import ConsumeOutcome as ConsumeOutcome
    from .audit import DiffAuditResult as DiffAuditResult
    from .audit import audit as audit
    from .audit import dag_nodes as dag_nodes
    from .config import GovernanceConfig as GovernanceConfig
    from .config import load_config as load_config
    from .errors import ApprovalError as ApprovalError
    from .errors import ApprovalKeyError as ApprovalKeyError
    from .errors import BundleError as BundleError
    from .errors import ConfigError as ConfigError
    from .errors import ConflictError as ConflictError
    from .errors import DigestError as DigestError
    from .errors import EventError as EventError
    from .errors import GovernanceError as GovernanceError
    from .errors import HashBackendError as HashBackendError
    from .errors import IdempotencyConflictError as IdempotencyConflictError
    from .errors import InputProblem as InputProblem
    from .errors import InvalidTTLError as InvalidTTLError
    from .errors import IrgovError as IrgovError
    from .errors import IRInputError as IRInputError
    from .errors import NotClaimantError as NotClaimantError
    from .errors import NotEscalatedError as NotEscalatedError
    from .errors import NotFoundError as NotFoundError
    from .errors import PackLoadError as PackLoadError
    from .errors import PluginError as PluginError
    from .errors import PolicyError as PolicyError
    from .errors import PolicyTestLoadError as PolicyTestLoadError
    from .errors import RateLimitedError as RateLimitedError
    from .errors import SeparationOfDutiesError as SeparationOfDutiesError
    from .errors import SourceProblem as SourceProblem
    from .errors import StoreError as StoreError
    from .errors import StoreTimeoutError as StoreTimeoutError
    from .events import BusStatus as BusStatus
    from .events import Event as Event
    from .events import EventBatch as EventBatch
    from .events import EventBus as EventBus
    from .events import EventType as EventType
    from .events import MemorySink as MemorySink
    from .events import new_event as new_event
    from .hashing import Digest as Digest
    from .hashing import HashBackend as HashBackend
    from .hashing import canonical_bytes as canonical_bytes
    from .hashing import dag_hash as dag_hash
    from .hashing import ir_hash as ir_hash
    from .hashing import step_hash as step_hash
    from .hashing import verify_digest as verify_digest
    from .hookspecs import hookimpl as hookimpl
    from .kernel import ApprovalRequestView as ApprovalRequestView
    from .kernel import Clearance as Clearance
    from .kernel import Governance as Governance
    from .kernel import Grant as Grant
    from .kernel import RequestDetails as RequestDetails
    from .model import IR as IR
    from .model import InputLimits as InputLimits
    from .model import Step as Step
    from .model import load_ir as load_ir
    from .model import parse_ir as parse_ir
    from .policy import Decision as Decision
    from .policy import Finding as Finding
    from .policy import PolicyEngine as PolicyEngine
    from .policy.active import ReloadResult as ReloadResult

#: every public name -> the module (relative to this package) that defines it
_WHERE = {
    "Approval": "approvals",
    "ApprovalPage": "approvals",
    "ApprovalService": "approvals",
    "ApprovalStatus": "approvals",
    "ApprovalStore": "approvals",
    "ApprovalToken": "approvals",
    "ConsumeResult": "approvals",
    "open_store": "approvals",
    "ApprovalRequest": "approvals.ledger_records",
    "ApprovalRecord": "approvals.records",
    "ConsumeOutcome": "approvals.records",
    "DiffAuditResult": "audit",
    "audit": "audit",
    "dag_nodes": "audit",
    "GovernanceConfig": "config",
    "load_config": "config",
    "ApprovalError": "errors",
    "ApprovalKeyError": "errors",
    "BundleError": "errors",
    "ConfigError": "errors",
    "ConflictError": "errors",
    "DigestError": "errors",
    "EventError": "errors",
    "GovernanceError": "errors",
    "HashBackendError": "errors",
    "IdempotencyConflictError": "errors",
    "IRInputError": "errors",
    "InputProblem": "errors",
    "InvalidTTLError": "errors",
    "IrgovError": "errors",
    "NotClaimantError": "errors",
    "NotEscalatedError": "errors",
    "NotFoundError": "errors",
    "PackLoadError": "errors",
    "PluginError": "errors",
    "PolicyError": "errors",
    "PolicyTestLoadError": "errors",
    "RateLimitedError": "errors",
    "SeparationOfDutiesError": "errors",
    "SourceProblem": "errors",
    "StoreError": "errors",
    "StoreTimeoutError": "errors",
    "BusStatus": "events",
    "Event": "events",
    "EventBatch": "events",
    "EventBus": "events",
    "EventType": "events",
    "MemorySink": "events",
    "new_event": "events",
    "Digest": "hashing",
    "HashBackend": "hashing",
    "canonical_bytes": "hashing",
    "dag_hash": "hashing",
    "ir_hash": "hashing",
    "step_hash": "hashing",
    "verify_digest": "hashing",
    "hookimpl": "hookspecs",
    "ApprovalRequestView": "kernel",
    "Clearance": "kernel",
    "Governance": "kernel",
    "Grant": "kernel",
    "RequestDetails": "kernel",
    "IR": "model",
    "InputLimits": "model",
    "Step": "model",
    "load_ir": "model",
    "parse_ir": "model",
    "Decision": "policy",
    "Finding": "policy",
    "PolicyEngine": "policy",
    "ReloadResult": "policy.active",
}

__all__ = sorted([*_WHERE, "__version__"])


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module `irgov_policy` has no attribute `{name}`")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Importing the subpackage `irgov_policy.audit` sets the attribute `audit` of this package
    to the subpackage; the public name `audit` is the function, whatever was imported first."""

    def __setattr__(self, name: str, value: Any) -> None:
        if (name in _WHERE and isinstance(value, types.ModuleType)
                and value.__name__ == f"{__name__}.{name}" and hasattr(value, name)):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
