"""Property test of the approval state machine against an executable model: random interleavings
of create, consume (right and wrong tenant, hash and token), revoke, clock advance and sweep.
Every answer must match the model, so there are never two successes, no success after expiry
or revocation, and no backward transition."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from irgov_policy.approvals import ApprovalService, ApprovalStatus, ConsumeReason, KeyRing, open_store

from .conftest import redis_store_url
from .helpers import H1, H2, Clock

FORWARD = {
    ApprovalStatus.PENDING: {ApprovalStatus.PENDING, ApprovalStatus.CONSUMED, ApprovalStatus.EXPIRED,
                             ApprovalStatus.REVOKED},
    ApprovalStatus.CONSUMED: {ApprovalStatus.CONSUMED},
    ApprovalStatus.EXPIRED: {ApprovalStatus.EXPIRED},
    ApprovalStatus.REVOKED: {ApprovalStatus.REVOKED},
}
MAX_MISMATCHES = 3
_mostly = st.sampled_from([True, True, True, False])


@dataclass
class Model:
    approval_id: str
    token: str
    tenant: str
    ir_hash: str
    expires_us: int
    status: ApprovalStatus = ApprovalStatus.PENDING
    mismatches: int = 0
    successes: int = 0
    seen: ApprovalStatus = ApprovalStatus.PENDING


def _us(clock: Clock) -> int:
    from irgov_policy.approvals.records import to_us

    return to_us(clock())


class ApprovalMachine(RuleBasedStateMachine):
    store_kind = "memory"
    redis_url = ""
    redis_prefix = ""
    postgres_url = ""
    approvals = Bundle("approvals")

    @initialize()
    def setup(self) -> None:
        self.clock = Clock()
        if self.store_kind == "sqlite":
            self.tmp = tempfile.TemporaryDirectory()
            url = f"sqlite:///{Path(self.tmp.name) / 'sm.db'}"
        elif self.store_kind == "redis":
            # a fresh prefix per example: examples never see each other's approvals
            url = redis_store_url(self.redis_url, f"{self.redis_prefix}{uuid.uuid4().hex[:8]}:")
        elif self.store_kind == "postgres":
            # a fresh schema per example, dropped at teardown
            self.schema = f"irgov_test_sm_{uuid.uuid4().hex[:12]}"
            url = f"{self.postgres_url}?schema={self.schema}"
        else:
            url = "memory://"
        self.service = ApprovalService(open_store(url), KeyRing.generate(), clock=self.clock,
                                       max_mismatches=MAX_MISMATCHES)
        self.models: list[Model] = []

    def teardown(self) -> None:
        if hasattr(self, "service"):
            self.service.store.close()
        if hasattr(self, "tmp"):
            self.tmp.cleanup()
        if hasattr(self, "schema"):
            import psycopg

            with psycopg.connect(self.postgres_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def _live(self, m: Model) -> bool:
        return m.status is ApprovalStatus.PENDING and _us(self.clock) < m.expires_us

    def _mismatch(self, m: Model) -> None:
        if self._live(m):
            m.mismatches += 1
            if m.mismatches >= MAX_MISMATCHES:
                m.status = ApprovalStatus.REVOKED

    @rule(target=approvals, tenant=st.sampled_from(["a", "b"]), ir_hash=st.sampled_from([H1, H2]),
          ttl=st.sampled_from([1, 5, 30]))
    def create(self, tenant: str, ir_hash: str, ttl: int) -> Model:
        approval, token = self.service.create(tenant, ir_hash, ttl_seconds=ttl)
        m = Model(approval.approval_id, str(token), tenant, ir_hash, _us(self.clock) + ttl * 1_000_000)
        self.models.append(m)
        return m

    # Mostly right arguments, so that successes and replays are frequent.
    @rule(m=approvals, right_tenant=_mostly, right_hash=_mostly, right_token=_mostly)
    def consume(self, m: Model, right_tenant: bool, right_hash: bool, right_token: bool) -> None:
        tenant = m.tenant if right_tenant else ("b" if m.tenant == "a" else "a")
        ir_hash = m.ir_hash if right_hash else (H2 if m.ir_hash == H1 else H1)
        token = m.token if right_token else m.token[:-1] + ("0" if m.token[-1] != "0" else "1")
        result = self.service.consume(token, tenant_id=tenant, ir_hash=ir_hash)
        expected: ConsumeReason | None
        if not right_token:
            expected = ConsumeReason.TOKEN_NOT_FOUND
        elif not right_tenant:
            expected = ConsumeReason.TOKEN_NOT_FOUND
            self._mismatch(m)
        elif m.status is ApprovalStatus.CONSUMED:
            expected = ConsumeReason.ALREADY_CONSUMED
        elif m.status is ApprovalStatus.REVOKED:
            expected = ConsumeReason.REVOKED
        elif m.status is ApprovalStatus.EXPIRED:
            expected = ConsumeReason.EXPIRED
        elif not self._live(m):
            expected = ConsumeReason.EXPIRED
            m.status = ApprovalStatus.EXPIRED
        elif not right_hash:
            expected = ConsumeReason.IR_HASH_MISMATCH
            self._mismatch(m)
        else:
            expected = None
            m.status = ApprovalStatus.CONSUMED
            m.successes += 1
        assert result.reason is expected
        assert result.success is (expected is None)
        if result.success:
            assert m.successes == 1
        if expected not in (None, ConsumeReason.TOKEN_NOT_FOUND):
            assert result.status is m.status

    @rule(m=approvals)
    def revoke(self, m: Model) -> None:
        if self._live(m):
            m.status = ApprovalStatus.REVOKED
        elif m.status is ApprovalStatus.PENDING:
            m.status = ApprovalStatus.EXPIRED
        after = self.service.revoke(m.approval_id, m.tenant, "r")
        assert after is not None and after.status is m.status

    @rule(seconds=st.sampled_from([0.5, 1, 4.999999, 0.000001, 5, 10, 31]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def sweep(self) -> None:
        due = [m for m in self.models if m.status is ApprovalStatus.PENDING and not self._live(m)]
        for m in due:
            m.status = ApprovalStatus.EXPIRED
        assert self.service.sweep() == len(due)

    @invariant()
    def matches_the_model(self) -> None:
        if not hasattr(self, "models"):
            return
        now = _us(self.clock)
        for m in self.models:
            got = self.service.get(m.approval_id, m.tenant)
            assert got is not None
            effective = m.status
            if m.status is ApprovalStatus.PENDING and now >= m.expires_us:
                effective = m.status = ApprovalStatus.EXPIRED  # get() records the expiry
            assert got.status is effective, (m, got)
            assert got.status in FORWARD[m.seen]
            m.seen = got.status
            assert m.successes <= 1


class SQLiteApprovalMachine(ApprovalMachine):
    store_kind = "sqlite"


class RedisApprovalMachine(ApprovalMachine):
    store_kind = "redis"


class PostgresApprovalMachine(ApprovalMachine):
    store_kind = "postgres"


_settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("machine", [ApprovalMachine, SQLiteApprovalMachine], ids=["memory", "sqlite"])
def test_state_machine(machine: type[ApprovalMachine]) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(machine, settings=_settings)


def test_state_machine_redis(redis_client: Any, redis_url: str, redis_prefix: str) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    RedisApprovalMachine.redis_url = redis_url
    RedisApprovalMachine.redis_prefix = redis_prefix  # the fixture deletes every key under it
    run_state_machine_as_test(RedisApprovalMachine, settings=_settings)


def test_state_machine_postgres(postgres_url: str) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    PostgresApprovalMachine.postgres_url = postgres_url
    run_state_machine_as_test(PostgresApprovalMachine, settings=_settings)
