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

from ..approvals.keyfile import default_key_file
from .build import (
    KernelParts,
    build_approvals,
    build_bus,
    build_engine,
    build_keyring,
    build_ledger,
    build_parts,
    build_registry,
    resolve_config,
)
from .governance import Governance
from .request_details import RequestDetails
from .requests import REQUEST_STATUSES
from .views import ApprovalRequestView, Clearance, Grant

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
