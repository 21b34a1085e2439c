"""The execution gate's answer kept for an idempotent retry (docs/approvals.md, "Retrying the gate").

When `authorize_execution` consumes an approval with an idempotency key, its whole answer is
recorded with the consume, in the store's own transaction: the clearance (`Clearance.to_dict`,
built before the consume with the success it will have) and a digest of the DAG it cleared. A
retry with the same key, token, caller, tenant and IR hash is answered from that record alone:
the same body, the same `checked_at`, no decision, no audit, no event. The same key with another
DAG is refused like any other reuse of the key.

The record is versioned JSON text; one this version cannot read refuses the retry (its consume
happened, but what was cleared cannot be shown again), never a success made up anew.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import IdempotencyConflictError
from ..hashing import digest_object
from .views import Clearance

__all__ = ["dag_fingerprint", "record_answer", "replayed_answer"]

logger = logging.getLogger(__name__)

RECORD_VERSION = 1


def dag_fingerprint(dag_nodes: Sequence[Any] | Mapping[str, Any]) -> str | None:
    """A digest of the DAG exactly as the caller sent it (a list of nodes or `{"nodes": [...]}`),
    so a retry is recognised as the same request only when it asks for the same DAG. None for a
    DAG that is not JSON (nothing can be recorded for it, so its consume keeps no answer)."""
    try:
        return digest_object(dag_nodes if isinstance(dag_nodes, Mapping) else list(dag_nodes), "sha256")
    except (ValueError, TypeError, RecursionError):
        return None


def record_answer(fingerprint: str, clearance: Clearance) -> str:
    """The text kept beside the consume: the DAG's digest and the clearance as answered."""
    return json.dumps({"version": RECORD_VERSION, "dag": fingerprint, "clearance": clearance.to_dict()},
                      separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def replayed_answer(text: str, fingerprint: str | None, *, key: str, approval_id: str | None) -> Clearance:
    """The first answer again, from its record. Raises `IdempotencyConflictError` when the key was
    used for another DAG; a record that cannot be read is a refusal saying so."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
            raise ValueError(f"version `{data.get('version') if isinstance(data, dict) else None}` is not "
                             f"{RECORD_VERSION}")
        recorded_dag = data["dag"]
        clearance = Clearance.replay_of(data["clearance"])
    except (ValueError, KeyError, TypeError) as exc:
        logger.error("the recorded answer of approval %s cannot be read: %s", approval_id, exc)
        return Clearance(False, None, None, None, (
            f"authorization failed: idempotency key `{key}` is bound to a consume whose recorded answer "
            "cannot be read: the approval is spent; ask for a new approval",))
    if fingerprint is None or fingerprint != recorded_dag:
        raise IdempotencyConflictError(f"idempotency key `{key}` was used for another dag")
    return clearance
