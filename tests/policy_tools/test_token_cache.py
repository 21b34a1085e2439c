"""Memory stays bounded whatever strings IRs carry: the token cache is bounded by bytes, long
strings are tokenised without being kept, and a string with too many distinct tokens fails the
rule (REJECT) instead of being expanded. And the tokenizer's fast paths give its exact answers."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from irgov_policy.policy import PolicyEngine, baseline_pack_path, functions
from irgov_policy.policy.functions import TOKEN_CACHE, TokenCache, match_keys, token_set


def test_the_cache_is_bounded_by_bytes_and_keeps_recent_strings() -> None:
    cache = TokenCache(max_bytes=10_000, max_string=100)
    for i in range(1000):
        # token sets hold match keys (TR39 skeletons): a digit's skeleton may be a letter
        assert cache.token_set(f"prod-{i} eu") == {"prod", *match_keys(str(i)), "eu"}
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


def _split_by_the_loop(run: str) -> list[str]:
    parts, start = [], 0
    for i in range(1, len(run)):
        before, here = run[i - 1], run[i]
        if (before.isdigit() != here.isdigit() or (before.islower() and here.isupper())
                or (before.isupper() and here.isupper() and i + 1 < len(run) and run[i + 1].islower())):
            parts.append(run[start:i])
            start = i
    parts.append(run[start:])
    return parts


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(string.printable + "aZ9\u01c5\u3042\u00df\u00c9\u00bd\u00b2\u03a3"
                                                                  "\u0130\u0131\u0149\uff21\u0440\u200b\u0301"),
                    max_size=40))
def test_the_fast_token_paths_equal_icu_and_the_splitting_rules(text: str) -> None:
    """One-word runs found in C, ASCII text cut and skeletonised by translation: the same tokens
    and keys as the splitting loop and ICU's skeletons of each word's lower and upper case."""
    runs = functions._TOKEN.findall(functions._word_text(text))
    assert [functions._split_run(run) for run in runs] == [_split_by_the_loop(run) for run in runs]
    words = functions._words(text)
    icu_keys = frozenset(str(functions._SPOOF_CHECKER.getSkeleton(0, form)).lower()
                         for w in words for form in (w.lower(), w.upper()))
    assert functions._token_keys(text) == icu_keys == token_set(text)
