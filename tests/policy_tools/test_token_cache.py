"""Memory stays bounded whatever strings IRs carry: the token cache is bounded by bytes, long
strings are tokenised without being kept, and a string with too many distinct tokens fails the
rule (REJECT) instead of being expanded."""

from __future__ import annotations

import pytest

from irgov_policy.policy import PolicyEngine, baseline_pack_path
from irgov_policy.policy.functions import TOKEN_CACHE, TokenCache, match_key, token_set


def test_the_cache_is_bounded_by_bytes_and_keeps_recent_strings() -> None:
    cache = TokenCache(max_bytes=10_000, max_string=100)
    for i in range(1000):
        # token sets hold match keys (TR39 skeletons): a digit's skeleton may be a letter
        assert cache.token_set(f"prod-{i} eu") == {"prod", match_key(str(i)), "eu"}
        assert cache.size <= cache.max_bytes
    assert 0 < len(cache) < 1000
    assert cache.token_set("prod-999 eu") is cache.token_set("prod-999 eu")  # the latest is kept


def test_long_strings_are_tokenised_without_being_kept() -> None:
    cache = TokenCache(max_string=4096)
    text = "staging " * 100_000 + "prod"
    assert "prod" in cache.token_set(text)
    assert len(cache) == 0 and cache.size == 0


def test_too_many_distinct_tokens_is_an_error() -> None:
    cache = TokenCache(max_tokens=1000)
    with pytest.raises(ValueError, match="more than 1000 distinct tokens"):
        cache.token_set(" ".join(f"w{i}" for i in range(1001)))


def test_eight_large_distinct_strings_leave_the_shared_cache_small() -> None:
    TOKEN_CACHE.clear()
    for i in range(8):
        token_set({"notes": f"{i} " + "x" * 7_000_000})
    assert TOKEN_CACHE.size <= TOKEN_CACHE.max_bytes and len(TOKEN_CACHE) <= 8
    assert TOKEN_CACHE.size < 64 * 1024  # only the short keys, never a 7 MB string


@pytest.mark.parametrize("engine", ["celpy", "cel-cpp"])
def test_a_string_with_too_many_tokens_rejects(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TOKEN_CACHE, "max_tokens", 50)
    policy = PolicyEngine.from_paths([baseline_pack_path()], engine, use_plugins=False, budget_ms=60_000)
    step = {"action": "course.create", "provider": "course_factory.v1", "resource": "r", "idempotency_key": "k",
            "params": {"text": " ".join(f"w{i}" for i in range(60))}}
    decision = policy.evaluate({"tenant_id": "t", "steps": [step]})
    assert decision.status == "REJECT"
    assert "RULE_ERROR" in decision.violation_codes()
    assert any("distinct tokens" in v.message for v in decision.violations)
