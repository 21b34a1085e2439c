"""The schema of the PostgreSQL approval store, as numbered migration steps.

The address's schema holds three components, as the SQLite store's file does: `approvals`,
`ledger` and `outbox`. Step 1 of each is the first release's layout (`CREATE ... IF NOT EXISTS`).
A new step is appended to its component's list, never edited once released (docs/deployment.md).
"""

from __future__ import annotations

from ..events.outbox_postgres import MIGRATION_LOCK, PG_OUTBOX_COMPONENT
from ..storage.migrations import Component, Step
from .ledger_postgres import LEDGER_DECISION_DETAILS, LEDGER_SCHEMA, LEDGER_TOKEN_CLAIM

__all__ = ["APPROVALS_V1", "LEDGER_CORRELATION", "MIGRATION_LOCK", "POSTGRES_COMPONENTS"]

#: ledger step 2. It runs after the approvals' step 2 (components apply in order), so both
#: columns exist; requests and approvals made before it take the request id of the kernel's
#: decision on their tenant and IR hash (the same hash is the same IR, request id included).
LEDGER_CORRELATION = """
ALTER TABLE irgov_approval_requests ADD COLUMN IF NOT EXISTS correlation_id TEXT;
UPDATE irgov_approval_requests SET correlation_id = (SELECT d.request_id FROM irgov_decisions d
    WHERE d.tenant_id = irgov_approval_requests.tenant_id AND d.ir_hash = irgov_approval_requests.ir_hash)
    WHERE correlation_id IS NULL;
UPDATE irgov_approvals SET correlation_id = (SELECT d.request_id FROM irgov_decisions d
    WHERE d.tenant_id = irgov_approvals.tenant_id AND d.ir_hash = irgov_approvals.ir_hash)
    WHERE correlation_id IS NULL;
"""


APPROVALS_V1 = """
CREATE TABLE IF NOT EXISTS irgov_approvals (
    approval_id   TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    ir_hash       TEXT NOT NULL,
    token_kid     TEXT NOT NULL,
    token_digest  TEXT NOT NULL UNIQUE,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'consumed', 'expired', 'revoked')),
    ttl_seconds   TEXT NOT NULL,
    created_us    BIGINT NOT NULL,
    expires_us    BIGINT NOT NULL,
    created_by    TEXT,
    reason        TEXT,
    consumed_us   BIGINT,
    consumed_by   TEXT,
    revoked_us    BIGINT,
    revoked_by    TEXT,
    revoke_reason TEXT,
    expired_us    BIGINT,
    finished_us   BIGINT,
    mismatches    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS irgov_approvals_tenant ON irgov_approvals (tenant_id, created_us DESC, approval_id DESC);
CREATE INDEX IF NOT EXISTS irgov_approvals_due ON irgov_approvals (status, expires_us);
CREATE INDEX IF NOT EXISTS irgov_approvals_finished ON irgov_approvals (finished_us);
CREATE OR REPLACE FUNCTION irgov_approvals_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'pending' AND NEW.status <> OLD.status THEN
        RAISE EXCEPTION 'approval status only moves forward';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS irgov_approvals_forward_only ON irgov_approvals;
CREATE TRIGGER irgov_approvals_forward_only BEFORE UPDATE OF status ON irgov_approvals
    FOR EACH ROW EXECUTE FUNCTION irgov_approvals_forward_only();
"""

POSTGRES_COMPONENTS: tuple[Component, ...] = (
    Component("approvals", (
        Step(1, "approvals table, indexes and forward-only trigger", APPROVALS_V1),
        Step(2, "approvals carry the IR's request id (events' meta.correlation_id)",
             "ALTER TABLE irgov_approvals ADD COLUMN IF NOT EXISTS correlation_id TEXT"),
        Step(3, "a consume's idempotency key, unique per tenant, kept as long as its approval",
             "ALTER TABLE irgov_approvals ADD COLUMN IF NOT EXISTS consume_key TEXT;\n"
             "CREATE UNIQUE INDEX IF NOT EXISTS irgov_approvals_consume_key ON irgov_approvals "
             "(tenant_id, consume_key) WHERE consume_key IS NOT NULL"),
        Step(4, "the execution gate's answer beside its consume's idempotency key, replayed to a retry",
             "ALTER TABLE irgov_approvals ADD COLUMN IF NOT EXISTS consume_answer TEXT"),
    )),
    Component("ledger", (
        Step(1, "decisions, submitters and approval requests", LEDGER_SCHEMA),
        Step(2, "approval requests carry the IR's request id (events' meta.correlation_id); those made "
                "before, and their approvals, take it from their decision", LEDGER_CORRELATION),
        Step(3, "an escalated decision keeps its step count, intent summary and details for approvers",
             LEDGER_DECISION_DETAILS),
        Step(4, "a token granted to be claimed waits sealed beside its request", LEDGER_TOKEN_CLAIM),
    )),
    PG_OUTBOX_COMPONENT,  # the relay's own tables are the outbox's (events.outbox_postgres)
)
