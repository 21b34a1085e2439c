"""Freezes the public API: a change here is a deliberate, reviewed change of the package's contract."""

from __future__ import annotations

import irgov_policy

FROZEN = [
    "Approval", "ApprovalError", "ApprovalService", "ApprovalStatus", "Clearance", "ConfigError",
    "ConsumeResult", "Decision", "DiffAuditResult", "DigestError", "Event", "EventBus", "EventError",
    "EventType", "Finding", "Governance", "GovernanceConfig", "HashBackend", "HashBackendError", "IR", "IRInputError",
    "InputLimits", "InvalidTTLError", "IrgovError", "MemorySink", "PackLoadError", "PluginError",
    "PolicyEngine", "PolicyError", "Step", "StoreError", "__version__", "audit", "canonical_bytes",
    "dag_hash", "dag_nodes", "hookimpl", "ir_hash", "load_config", "load_ir", "new_event", "open_store", "parse_ir",
    "step_hash", "verify_digest",
]


def test_public_api_is_frozen_and_sorted() -> None:
    assert irgov_policy.__all__ == FROZEN
    assert irgov_policy.__all__ == sorted(irgov_policy.__all__)


def test_every_public_name_resolves() -> None:
    for name in irgov_policy.__all__:
        assert getattr(irgov_policy, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        irgov_policy.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
