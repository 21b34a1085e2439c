"""A process that requests and grants approvals as fast as it can, in several threads, until it
is killed. Run by test_grant_crash.py: `python grant_worker.py STORE_URL KEY`."""

from __future__ import annotations

import sys
import threading

from irgov_policy.kernel import Governance

IR = {
    "tenant_id": "t1",
    "request_id": "req-crash",
    "steps": [{"action": "dns.update_records", "provider": "dns.hetzner", "resource": "zone:example.com",
               "params": {"records": [{"type": "A", "name": "www", "value": "203.0.113.7"}]},
               "idempotency_key": "k-crash-1"}],
}


def main(store_url: str, key: str) -> None:
    gov = Governance.from_config(environ={}, approval_store=store_url, approval_key=key, outbox="memory:")
    decision = gov.validate(IR)
    assert decision.status == "ESCALATE", decision.status
    lock = threading.Lock()
    granted = [0]

    def work() -> None:
        while True:
            request = gov.request_approval(decision, "alice")
            gov.grant(request.request.request_id, "bob", "t1")
            with lock:
                granted[0] += 1
                if granted[0] == 1:
                    print("granting", flush=True)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
