"""The evaluator: an IR (object, dict or JSON bytes) in, a `Decision` out, never an exception.

Per step the hot path is: native primitives (set lookups for vocabularies, provider families
and action tiers), one activation, one CEL call evaluating every step rule into a list. Only
when that call errors are the rules evaluated one by one, to name the rule that failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InputProblem, IRInputError, PolicyError
from ..events.bus import EventBus
from ..events.envelope import new_event
from ..hashing import DEFAULT_ALGORITHM, digest_bytes, digest_object, ir_hash
from ..model import IR, InputLimits, Step, load_ir, parse_ir
from ..producer import salvage_identity
from ..strict_json import loads_strict
from .cel.base import CelEvalError, create_engine
from .checks import Finding, PythonCheck, as_check
from .decision import Decision, HighRiskStep, RuleHit, Status, StepResult, Violation
from .functions import family
from .pack import RulePack, load_pack
from .plugin_hooks import collect_cel_functions, collect_checks, collect_rule_pack_paths
from .policyset import CompiledRule, PolicySet
from .primitives import PrimitiveError
from .rule_index import GuardedRule, StepPlan
from .shipped import baseline_pack_path
from .sources import PackTrust, load_pack_sources

__all__ = ["DEFAULT_BUDGET_MS", "DEFAULT_MAX_RULE_EVALUATIONS", "VOCABULARY_RULES", "PolicyEngine", "ir_variables", "publish_decision",
           "step_variables"]

logger = logging.getLogger(__name__)

# The budget of one decision is counted in rule evaluations (a step costs the rules and checks it
# runs, plus one): the same IR and packs always get the same answer, whatever the machine's load.
# 10,000 steps of the baseline pack take about 90,000. Wall-clock time is only a backstop against
# a rule or check that hangs, generous enough never to decide under ordinary load.
DEFAULT_MAX_RULE_EVALUATIONS = 250_000
DEFAULT_BUDGET_MS = 10_000.0

RULE_ERROR = "RULE_ERROR"
BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
INVALID_IR = "INVALID_IR"
EVALUATION_ERROR = "EVALUATION_ERROR"


def _step_index_of(pointer: str) -> int | None:
    parts = pointer.split("/")
    if len(parts) > 2 and parts[1] == "steps" and parts[2].isdigit():
        return int(parts[2])
    return None


def step_variables(step: Step, index: int) -> dict[str, Any]:
    """The `step` variable of CEL rules: every field, absent optional ones as null, plus `index`."""
    return {
        "index": index,
        "action": step.action,
        "provider": step.provider,
        "resource": step.resource,
        "params": step.params,
        "constraints": step.constraints,
        "idempotency_key": step.idempotency_key,
        "budget_cents": step.budget_cents,
        "step_id": step.step_id,
        "description": step.description,
    }


def ir_variables(ir: IR, with_steps: bool) -> dict[str, Any]:
    """The `ir` variable: IR fields and `step_count`; `steps` only for rules of scope `ir`
    (putting every step into every step's activation would make evaluation quadratic)."""
    out: dict[str, Any] = {
        "tenant_id": ir.tenant_id,
        "request_id": ir.request_id,
        "created_at": ir.created_at,
        "intent_summary": ir.intent_summary,
        "labels": dict(ir.labels),
        "step_count": len(ir.steps),
    }
    if with_steps:
        out["steps"] = [step_variables(s, i) for i, s in enumerate(ir.steps)]
    return out


class _BudgetExceeded(Exception):
    def __init__(self, step_index: int | None, budget: str) -> None:
        self.step_index = step_index
        self.budget = budget


class PolicyEngine:
    """Evaluates IRs against a composed `PolicySet` and Python checks.

    Build with `PolicyEngine.default()`, `from_paths([...])` or `from_packs([...])`; then
    `evaluate(ir_or_dict_or_json, bus=None)` returns a `Decision` and never raises."""

    def __init__(self, policy: PolicySet, *, checks: Iterable[PythonCheck] = (),
                 budget_ms: float = DEFAULT_BUDGET_MS, hash_algorithm: str = DEFAULT_ALGORITHM,
                 limits: InputLimits | None = None,
                 max_rule_evaluations: int = DEFAULT_MAX_RULE_EVALUATIONS) -> None:
        if budget_ms <= 0:
            raise PolicyError(f"time budget `{budget_ms}` ms is not positive")
        if max_rule_evaluations <= 0:
            raise PolicyError(f"rule evaluation budget `{max_rule_evaluations}` is not positive")
        self.max_rule_evaluations = max_rule_evaluations
        self.policy = policy
        self.checks = tuple(checks)
        self.budget_ms = budget_ms
        self.hash_algorithm = hash_algorithm
        self.limits = limits or InputLimits()
        self._budget_ns = int(budget_ms * 1_000_000)

    # construction -------------------------------------------------------------------------

    @classmethod
    def from_packs(cls, packs: Iterable[RulePack], engine: str = "auto", *,
                   functions: Mapping[str, Callable[..., Any]] | None = None,
                   checks: Iterable[Any] | None = None, use_plugins: bool = True,
                   budget_ms: float = DEFAULT_BUDGET_MS, hash_algorithm: str = DEFAULT_ALGORITHM,
                   index_rules: bool = True,
                   max_rule_evaluations: int = DEFAULT_MAX_RULE_EVALUATIONS) -> PolicyEngine:
        """Compose loaded packs for `engine` (`auto`, `celpy`, `cel-cpp`). With `use_plugins`,
        CEL functions and checks registered by plugins are added to the given ones.
        `index_rules=False` runs every step rule for every step (the same decisions, slower)."""
        all_functions = dict(collect_cel_functions()) if use_plugins else {}
        for name, function in (functions or {}).items():
            if name in all_functions:
                raise PolicyError(f"cel function `{name}` is registered twice")
            all_functions[name] = function
        all_checks = [as_check(c) for c in (checks or ())]
        if use_plugins:
            all_checks += collect_checks()
        cel = create_engine(engine, all_functions)
        policy = PolicySet.compose(packs, cel, index_rules=index_rules)
        return cls(policy, checks=all_checks, budget_ms=budget_ms, hash_algorithm=hash_algorithm,
                   max_rule_evaluations=max_rule_evaluations)

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path], engine: str = "auto", *, include_plugin_packs: bool = False,
                   trust: PackTrust | None = None, **options: Any) -> PolicyEngine:
        """Load pack files (a directory means every `*.irgov.yaml` in it, a `.tar.gz` a bundle,
        verified under `trust`) and compose them."""
        packs = load_pack_sources(paths, trust=trust)
        if include_plugin_packs:
            packs += [load_pack(p) for p in collect_rule_pack_paths()]
        return cls.from_packs(packs, engine, **options)

    @classmethod
    def default(cls, engine: str = "auto", **options: Any) -> PolicyEngine:
        """The shipped baseline pack plus the packs plugins register."""
        return cls.from_paths([baseline_pack_path()], engine, include_plugin_packs=True, **options)

    @property
    def engine_name(self) -> str:
        return self.policy.engine.name

    @property
    def packs(self) -> tuple[RulePack, ...]:
        return self.policy.packs

    # evaluation ---------------------------------------------------------------------------

    def evaluate(self, source: IR | Mapping[str, Any] | bytes | str, *, bus: EventBus | None = None,
                 now: datetime | None = None) -> Decision:
        """Decide on one IR. Invalid input, erroring rules and an exhausted budget are REJECT
        decisions. With `bus`, the matching `ir.validated_*` event is published."""
        start = time.perf_counter_ns()
        evaluated_at = now or datetime.now(UTC)
        try:
            ir = self.parse(source)
        except IRInputError as exc:
            decision = self._invalid(source, exc.problems, start, evaluated_at)
        except Exception as exc:  # never let untrusted input escape as a traceback
            logger.exception("unexpected error while reading an ir")
            decision = self._invalid(source, [InputProblem("", f"unreadable input: {type(exc).__name__}")],
                                     start, evaluated_at)
        else:
            try:
                decision = self._decide(ir, start, evaluated_at)
            except Exception as exc:
                logger.exception("unexpected error while evaluating ir %s", ir.request_id)
                decision = self._failed(ir, start, evaluated_at, f"evaluation failed: {type(exc).__name__}: {exc}")
        if bus is not None:
            self._publish(decision, bus)
        return decision

    def parse(self, source: IR | Mapping[str, Any] | bytes | str) -> IR:
        """The strict IR of `source` under this engine's input limits (an `IR` is returned as it
        is); raises `IRInputError`. A caller that needs the IR besides the decision parses it
        once here and passes the `IR` to `evaluate`."""
        if isinstance(source, IR):
            return source
        if isinstance(source, bytes | str):
            return load_ir(source, limits=self.limits)
        return parse_ir(source, limits=self.limits)

    def _decide(self, ir: IR, start: int, evaluated_at: datetime) -> Decision:
        policy = self.policy
        engine = policy.engine
        deadline = start + self._budget_ns
        digest = ir_hash(ir, self.hash_algorithm)
        violations: list[Violation] = []
        results: list[StepResult] = []
        ir_meta = ir_variables(ir, with_steps=False)
        constants = policy.constants
        known_actions = policy.actions
        known_providers = policy.providers
        mismatch = policy.provider_mismatch
        step_checks = sum(1 for c in self.checks if c.step is not None)
        remaining = self.max_rule_evaluations
        try:
            for index, step in enumerate(ir.steps):
                hits: list[RuleHit] = []
                action, provider = step.action, step.provider
                plan = policy.step_plan(action, provider)
                # The primary budget counts work, not time, so that a decision does not depend on
                # the machine's load: each step costs the rules and checks it runs, plus one.
                remaining -= len(plan.rules) + step_checks + 1
                if remaining < 0:
                    raise _BudgetExceeded(index, "rules")
                variables = step_variables(step, index)
                if action in known_actions:
                    for entry in policy.tier_entries(action):
                        hits.append(RuleHit(entry.pack.name, entry.spec.id, entry.spec.tier, entry.spec.reason,
                                            entry.spec.mode))
                else:
                    violations.append(Violation(index, "UNKNOWN_ACTION", f"unknown action `{action}`",
                                                rule=VOCABULARY_RULES["actions"]))
                    # Fail closed: an action no pack knows is as risky as the riskiest one.
                    hits.append(RuleHit("-", VOCABULARY_RULES["actions"], 3, UNKNOWN_ACTION_REASON, "enforce"))
                if provider not in known_providers:
                    violations.append(Violation(index, "UNKNOWN_PROVIDER", f"unknown provider `{provider}`",
                                                rule=VOCABULARY_RULES["providers"]))
                elif mismatch.native(variables):
                    violations.append(Violation(
                        index, "PROVIDER_MISMATCH",
                        f"provider `{provider}` does not serve actions of family `{family(action)}`",
                        rule=VOCABULARY_RULES["families"]))
                if plan.rules:
                    self._run_rules(plan, variables, ir_meta, index, hits, violations)
                for check in self.checks:
                    if check.step is not None:
                        self._run_check(check, lambda c=check, s=step, i=index: c.step(s, i, ir),  # type: ignore[misc]
                                        index, hits, violations)
                tier = max((h.tier for h in hits if h.mode == "enforce" and h.tier is not None), default=0)
                results.append(StepResult(index, step.step_id, action, provider, tier, tuple(hits)))
                if time.perf_counter_ns() > deadline:
                    raise _BudgetExceeded(index, "time")
            remaining -= len(policy.ir_rules) + sum(1 for c in self.checks if c.ir is not None)
            if remaining < 0:
                raise _BudgetExceeded(None, "rules")
            if policy.ir_rules:
                activation = engine.activation({"step": {}, "ir": ir_variables(ir, with_steps=True),
                                                "constants": constants})
                for rule in policy.ir_rules:
                    self._run_one(rule, activation, None, None, violations)
            for check in self.checks:
                if check.ir is not None:
                    self._run_check(check, lambda c=check: c.ir(ir), None, None, violations)  # type: ignore[misc]
            if time.perf_counter_ns() > deadline:
                raise _BudgetExceeded(None, "time")
        except _BudgetExceeded as exc:
            budget = (f"its budget of {self.max_rule_evaluations} rule evaluations" if exc.budget == "rules"
                      else f"its time budget of {self.budget_ms:g} ms")
            violations.append(Violation(
                exc.step_index, BUDGET_EXCEEDED, f"evaluation exceeded {budget}"
                + (f" at step {exc.step_index}" if exc.step_index is not None else "")))
        return self._conclude(ir, digest, results, violations, start, evaluated_at)

    def _run_rules(self, plan: StepPlan, variables: dict[str, Any], ir_meta: dict[str, Any], index: int,
                   hits: list[RuleHit], violations: list[Violation]) -> None:
        policy = self.policy
        engine = policy.engine
        values: list[Any] = []
        activation: Any = None
        data: dict[str, Any] = {}
        if plan.batch_rules:
            data = self._activation_data(plan, variables, ir_meta)
            activation = engine.activation(data)
            for program, chunk in plan.batches:
                try:
                    values.extend(engine.evaluate(program, activation))
                except CelEvalError:
                    # Some rule errored: evaluate one by one to name it (and keep the others' results).
                    # Each rule's own program reads constants from the activation, not inlined.
                    if "constants" not in data:
                        data["constants"] = policy.constants
                        activation = engine.activation(data)
                    values.extend(self._evaluate_one(rule, activation) for rule in chunk)
        token_cache: dict[str, frozenset[str]] = {}
        for rule, source in plan.entries:
            when: Any
            if source is None:
                when = True
            elif type(source) is int:
                when = values[source]
            else:
                assert isinstance(source, GuardedRule)
                if any(guard.refutes(variables, ir_meta, token_cache) for guard in source.guards):
                    continue  # a false term makes the whole `&&` false: nothing to record
                if activation is None:
                    data = self._activation_data(plan, variables, ir_meta)
                    activation = engine.activation(data)
                try:
                    when = engine.evaluate(source.program, activation)
                except CelEvalError as exc:
                    when = exc
            if when is False:
                continue
            matched: Any = True
            if rule.match is not None:
                try:
                    matched = rule.match.native(variables, token_cache)
                except PrimitiveError as exc:
                    matched = exc
            self._record(rule, matched, when, index, hits, violations)

    def _activation_data(self, plan: StepPlan, variables: dict[str, Any], ir_meta: dict[str, Any]) -> dict[str, Any]:
        fields = self.policy.step_fields
        data: dict[str, Any] = {"step": variables if fields is None else {f: variables[f] for f in fields
                                                                          if f in variables}}
        for name in plan.variables:
            data[name] = ir_meta if name == "ir" else self.policy.constants
        return data

    def _evaluate_one(self, rule: CompiledRule, activation: Any) -> Any:
        try:
            return self.policy.engine.evaluate(rule.program, activation)
        except CelEvalError as exc:
            return exc

    def _run_one(self, rule: CompiledRule, activation: Any, index: int | None,
                 hits: list[RuleHit] | None, violations: list[Violation]) -> None:
        self._record(rule, True, self._evaluate_one(rule, activation), index, hits, violations)

    @staticmethod
    def _record(rule: CompiledRule, matched: Any, when: Any, index: int | None, hits: list[RuleHit] | None,
                violations: list[Violation]) -> None:
        """Combine `match` and `when` as CEL's `&&` does (false wins over an error), then
        report a hit, a violation, or a RULE_ERROR for an error or a non-boolean result.
        `hits` is None where no tier can be raised (rules of scope `ir`)."""
        if matched is False or when is False:
            return
        spec = rule.spec
        for part in (matched, when):
            if isinstance(part, Exception):
                violations.append(_rule_error(rule.pack.name, spec.id, str(part), index))
                return
        if when is not True:
            violations.append(_rule_error(rule.pack.name, spec.id,
                                          f"condition returned `{when!r}`, not a boolean", index))
            return
        if spec.violation is not None:
            violations.append(Violation(index, spec.violation.code, spec.violation.message,
                                        spec.violation.severity, rule.pack.name, spec.id, spec.mode))
        elif hits is None:
            # The pack schema already refuses a tier on a rule of scope `ir`: fail closed anyway.
            violations.append(_rule_error(rule.pack.name, spec.id, "a rule of scope `ir` raised a tier", index))
        else:
            hits.append(RuleHit(rule.pack.name, spec.id, spec.tier, spec.reason or "", spec.mode))

    @staticmethod
    def _run_check(check: PythonCheck, call: Callable[[], Iterable[Finding]], index: int | None,
                   hits: list[RuleHit] | None, violations: list[Violation]) -> None:
        try:
            findings = list(call())
        except Exception as exc:
            violations.append(_rule_error(check.pack, check.name, f"{type(exc).__name__}: {exc}", index))
            return
        for finding in findings:
            problem = finding.problem() if isinstance(finding, Finding) else "a check must yield `Finding` objects"
            if problem:
                violations.append(_rule_error(check.pack, getattr(finding, "rule", check.name), problem, index))
            elif finding.code is not None:
                violations.append(Violation(index, finding.code, finding.message or finding.code,
                                            finding.severity, check.pack, finding.rule, finding.mode))
            elif index is None or hits is None:
                # An IR-wide tier has no step to raise; report it as an explicit violation instead.
                violations.append(_rule_error(check.pack, finding.rule, "an ir check returned a tier", None))
            else:
                hits.append(RuleHit(check.pack, finding.rule, finding.tier, finding.reason or "", finding.mode))

    def _conclude(self, ir: IR, digest: str, results: list[StepResult], violations: list[Violation],
                  start: int, evaluated_at: datetime) -> Decision:
        threshold = self.policy.escalation_threshold
        risk_tier = max((r.tier for r in results), default=0)
        rejected = any(v.severity == "ERROR" and v.mode == "enforce" for v in violations)
        if rejected:
            status = Status.REJECT
        elif risk_tier >= threshold:
            status = Status.ESCALATE
        else:
            status = Status.PASS
        high = tuple(
            HighRiskStep(r.index, r.action, r.provider, r.tier, _reasons(r))
            for r in results if r.tier >= threshold
        )
        return Decision(
            status=status,
            risk_tier=risk_tier,
            requires_approval=status == Status.ESCALATE,
            ir_hash=digest,
            tenant_id=ir.tenant_id,
            request_id=ir.request_id,
            step_count=len(ir.steps),
            steps=tuple(results),
            violations=tuple(violations),
            high_risk_steps=high,
            packs=tuple(self.policy.pack_refs()),
            engine=self.engine_name,
            evaluated_at=evaluated_at,
            duration_us=(time.perf_counter_ns() - start) // 1000,
            notes=ir.notes,
        )

    def _invalid(self, source: Any, problems: list[InputProblem], start: int, evaluated_at: datetime) -> Decision:
        tenant, request, step_count = salvage_identity(self._decoded(source))
        violations = tuple(
            Violation(_step_index_of(p.pointer), INVALID_IR, f"{p.pointer or '/'}: {p.message}")
            for p in problems
        )
        return Decision(
            status=Status.REJECT, risk_tier=0, requires_approval=False,
            ir_hash=self._raw_digest(source),
            tenant_id=tenant, request_id=request, step_count=step_count,
            steps=(), violations=violations, high_risk_steps=(),
            packs=tuple(self.policy.pack_refs()), engine=self.engine_name, evaluated_at=evaluated_at,
            duration_us=(time.perf_counter_ns() - start) // 1000,
        )

    def _failed(self, ir: IR, start: int, evaluated_at: datetime, message: str) -> Decision:
        try:
            digest = ir_hash(ir, self.hash_algorithm)
        except Exception:
            digest = self._raw_digest(repr(ir))
        return self._conclude(ir, digest, [], [Violation(None, EVALUATION_ERROR, message)], start, evaluated_at)

    def _decoded(self, source: Any) -> Any:
        """The refused input as JSON values, to attribute the REJECT; None when unreadable."""
        if not isinstance(source, bytes | str):
            return source
        try:
            return loads_strict(source, max_bytes=self.limits.max_bytes, max_depth=self.limits.max_depth)
        except Exception:
            return None

    def _raw_digest(self, source: Any) -> str:
        """A digest of input the model refused: canonical JSON when possible, else its bytes."""
        try:
            if isinstance(source, bytes):
                return digest_bytes(source, self.hash_algorithm)
            if isinstance(source, str):
                return digest_bytes(source.encode("utf-8", "surrogatepass"), self.hash_algorithm)
            return digest_object(source, self.hash_algorithm)
        except Exception:
            return digest_bytes(repr(source).encode("utf-8", "backslashreplace"), self.hash_algorithm)

    @staticmethod
    def _publish(decision: Decision, bus: EventBus) -> None:
        publish_decision(decision, bus)


def publish_decision(decision: Decision, bus: EventBus) -> None:
    """Publish the decision's `ir.validated_*` event; never raises."""
    try:
        event = new_event(decision.event_type, decision.event_payload(), tenant_id=decision.tenant_id,
                          correlation_id=decision.request_id, now=decision.evaluated_at)
        bus.publish(event)
    except Exception:  # publishing must never change or break a decision
        logger.exception("could not publish the decision event for request %s", decision.request_id)


# Rule ids reported for the declarative vocabulary sections (united across packs, so no one
# pack owns them: their violations carry `pack: null`).
UNKNOWN_ACTION_REASON = "unknown action: treated as critical (fail closed)"
VOCABULARY_RULES = {"actions": "vocabularies.actions", "providers": "vocabularies.providers",
                    "families": "providerFamilies"}


def _rule_error(pack: str, rule: str, message: str, index: int | None) -> Violation:
    return Violation(index, RULE_ERROR, f"rule `{rule}` in pack `{pack}` failed: {message}", "ERROR", pack, rule)


def _reasons(result: StepResult) -> str:
    top = [h.reason for h in result.hits if h.mode == "enforce" and h.tier == result.tier]
    return "; ".join(dict.fromkeys(top)) or f"tier {result.tier}"
