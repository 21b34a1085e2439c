"""Every public sync method of `Governance` has an async twin (`a` prefix) taking the same
parameters and returning the same type, so an asyncio host can call each verb without
blocking its loop; and every async method has its sync twin."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from irgov_policy.kernel import Governance

# Sync methods without an async twin, and why.
SYNC_ONLY = {
    "from_config": "construction: a host builds the kernel once, before its loop serves requests",
    "add_sink": "registers an object in memory, no I/O",
    "packs": "reads the pack set in force from memory",
    "pack_status": "reads the pack set in force from memory",
}
# Async methods without a sync twin, and why.
ASYNC_ONLY = {
    "astop": "ends what `astart` began on the running loop; the sync lifecycle ends with `close`",
}


def _public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {name: member for name, member in inspect.getmembers(cls)
            if not name.startswith("_") and callable(member)}


def _sync_and_async(cls: type = Governance) -> tuple[dict[str, Callable[..., Any]], dict[str, Callable[..., Any]]]:
    methods = _public_methods(cls)
    is_async = {name: inspect.iscoroutinefunction(m) for name, m in methods.items()}
    return ({n: m for n, m in methods.items() if not is_async[n]},
            {n: m for n, m in methods.items() if is_async[n]})


def _parity_problems(cls: type) -> list[str]:
    sync, asynchronous = _sync_and_async(cls)
    problems = []
    for name, method in sorted(sync.items()):
        if name in SYNC_ONLY:
            continue
        twin = asynchronous.get("a" + name)
        if twin is None:
            problems.append(f"`{name}` has no async twin `a{name}`")
        elif inspect.signature(method) != inspect.signature(twin):
            problems.append(f"`a{name}{inspect.signature(twin)}` differs from `{name}{inspect.signature(method)}`")
    problems += [f"`{n}` has no sync twin `{n[1:]}`" for n in sorted(asynchronous)
                 if n not in ASYNC_ONLY and n[1:] not in sync]
    return problems


def test_every_method_has_its_twin_with_the_same_signature() -> None:
    assert _parity_problems(Governance) == []


def test_the_exemptions_name_real_methods() -> None:
    sync, asynchronous = _sync_and_async()
    assert set(SYNC_ONLY) <= set(sync) and not {"a" + n for n in SYNC_ONLY} & set(asynchronous)
    assert set(ASYNC_ONLY) <= set(asynchronous)


def test_the_check_sees_a_drifted_a_missing_and_an_orphan_twin() -> None:
    class Drifted(Governance):
        async def agrant(self, request_id: str, approver: str, tenant_id: str) -> Any:  # type: ignore[override]
            raise AssertionError("never called")

        def forget(self, request_id: str) -> None:
            raise AssertionError("never called")

        async def apurge(self) -> None:
            raise AssertionError("never called")

    problems = _parity_problems(Drifted)
    assert len(problems) == 3
    assert problems[0] == "`forget` has no async twin `aforget`"
    assert problems[1].startswith("`agrant(self, request_id: 'str', approver: 'str', tenant_id: 'str') -> 'Any'` differs")
    assert problems[2] == "`apurge` has no sync twin `purge`"
