"""A worker process for the contention tests: it opens its own store from the URL and, each
round, waits at the shared barrier and then tries to consume the round's token once."""

from __future__ import annotations

from typing import Any

from irgov_policy.approvals import ApprovalService, KeyRing, open_store


def consume_worker(url: str, key_text: str, barrier: Any, tasks: Any, results: Any) -> None:
    service = ApprovalService(open_store(url), KeyRing.parse(key_text))
    try:
        while True:
            task = tasks.get()
            if task is None:
                return
            token, tenant_id, ir_hash = task
            barrier.wait(timeout=60)
            try:
                result = service.consume(token, tenant_id=tenant_id, ir_hash=ir_hash)
                results.put((result.success, None if result.reason is None else result.reason.value))
            except Exception as exc:  # reported to the test, which fails on it
                results.put((False, f"error: {type(exc).__name__}: {exc}"))
    finally:
        service.store.close()
