"""The kernel: every part built from one configuration, behind the `Governance` facade.

- `build`: the one wiring path from `GovernanceConfig` to each part (registry, keyring, engine,
  bus, approval service, ledger).
- `requests`: the approval-request workflow (request, grant, revoke, list, get).
- `views`: what the kernel hands back (`ApprovalRequestView`, `Grant`, `Clearance`).
- `request_details`: what a human needs to judge a request, kept with the decision
  (`RequestDetails`, list items, most-urgent order).
- `governance`: the facade, its lifecycle, validation, the execution gate and the async twins.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..approvals.keyfile import default_key_file as default_key_file
    from .build import KernelParts as KernelParts
    from .build import build_approvals as build_approvals
    from .build import build_bus as build_bus
    from .build import build_engine as build_engine
    from .build import build_keyring as build_keyring
    from .build import build_ledger as build_ledger
    from .build import build_parts as build_parts
    from .build import build_registry as build_registry
    from .build import resolve_config as resolve_config
    from .governance import Governance as Governance
    from .request_details import RequestDetails as RequestDetails
    from .requests import REQUEST_STATUSES as REQUEST_STATUSES
    from .views import ApprovalRequestView as ApprovalRequestView
    from .views import Clearance as Clearance
    from .views import Grant as Grant

# Imported on first use: a command that only builds an engine (`irgov check`) does not pay for
# the facade, its request workflow and its tracing.
_WHERE = {
    "default_key_file": "..approvals.keyfile",
    "KernelParts": ".build",
    "build_approvals": ".build",
    "build_bus": ".build",
    "build_engine": ".build",
    "build_keyring": ".build",
    "build_ledger": ".build",
    "build_parts": ".build",
    "build_registry": ".build",
    "resolve_config": ".build",
    "Governance": ".governance",
    "RequestDetails": ".request_details",
    "REQUEST_STATUSES": ".requests",
    "ApprovalRequestView": ".views",
    "Clearance": ".views",
    "Grant": ".views",
}

__all__ = [
    "REQUEST_STATUSES",
    "ApprovalRequestView",
    "Clearance",
    "Governance",
    "Grant",
    "KernelParts",
    "RequestDetails",
    "build_approvals",
    "build_bus",
    "build_engine",
    "build_keyring",
    "build_ledger",
    "build_parts",
    "build_registry",
    "default_key_file",
    "resolve_config",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module `{__name__}` has no attribute `{name}`")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
