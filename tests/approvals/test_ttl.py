"""TTL validation: refused, never coerced (defect 6 of the original: 0 became an hour,
negatives were accepted, huge values crashed)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from irgov_policy.approvals import ApprovalService, KeyRing, open_store, validate_ttl
from irgov_policy.errors import ConfigError, InvalidTTLError


@pytest.mark.parametrize("ttl", [1, 1.5, 0.000001, 3600, 604800, 604800.0])
def test_valid(ttl: Any) -> None:
    assert validate_ttl(ttl, max_ttl=604800) is ttl


@pytest.mark.parametrize("ttl, message", [
    (0, "greater than 0"), (0.0, "greater than 0"), (-1, "greater than 0"), (-1e-6, "greater than 0"),
    (float("nan"), "finite"), (float("inf"), "finite"), (float("-inf"), "finite"),
    (True, "must be a number"), (False, "must be a number"), ("60", "must be a number"), (None, "must be a number"),
    (Decimal("60"), "must be a number"), ([60], "must be a number"),
    (604801, "exceeds the maximum"), (10**30, "exceeds the maximum"), (1e300, "exceeds the maximum"),
    (1e-7, "whole number of microseconds"),
])
def test_refused(ttl: Any, message: str) -> None:
    with pytest.raises(InvalidTTLError, match=message):
        validate_ttl(ttl, max_ttl=604800)


def test_error_message_style() -> None:
    with pytest.raises(InvalidTTLError) as info:
        validate_ttl(0, max_ttl=10)
    message = str(info.value)
    assert message == "ttl `0` must be greater than 0 seconds"
    assert message[0].islower() and not message.endswith(".")


def test_service_configuration_is_checked() -> None:
    store = open_store("memory://")
    with pytest.raises(ConfigError, match="default_ttl"):
        ApprovalService(store, KeyRing.generate(), default_ttl=0)
    with pytest.raises(ConfigError, match="default_ttl"):
        ApprovalService(store, KeyRing.generate(), default_ttl=100, max_ttl=10)
    with pytest.raises(ConfigError, match="max_mismatches"):
        ApprovalService(store, KeyRing.generate(), max_mismatches=0)
    with pytest.raises(ConfigError, match="max_ttl"):
        ApprovalService(store, KeyRing.generate(), max_ttl=float("inf"))
    service = ApprovalService(store, KeyRing.generate(), default_ttl=30, max_ttl=60)
    approval, _ = service.create("acme", "sha256:" + "0" * 64)
    assert approval.ttl_seconds == 30
    with pytest.raises(InvalidTTLError):
        service.create("acme", "sha256:" + "0" * 64, ttl_seconds=61)
