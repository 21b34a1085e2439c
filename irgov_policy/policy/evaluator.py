"""The evaluator: an IR (object, dict or JSON bytes) in, a `Decision` out, never an exception.

`PolicyEngine` builds a composed `PolicySet` and its checks, reads the input strictly
(`model.py`), hashes it, and walks the steps under a deterministic budget: per step the native
vocabulary primitives and the rules the step's plan selects (`step_rules.py`), then the IR's own
rules and checks. `outcome.py` turns what they said into the explained `Decision`.
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
from ..hashing import DEFAULT_ALGORITHM, ir_hash
from ..model import IR, InputLimits, load_ir, parse_ir
from .cel.base import create_engine
from .checks import PythonCheck, as_check
from .decision import Decision, RuleHit, StepResult, Violation
from .outcome import EVALUATION_ERROR, INVALID_IR, DecisionWriter, publish_decision
from .pack import RulePack, load_pack
from .plugin_hooks import collect_cel_functions, collect_checks, collect_rule_pack_paths
from .policyset import PolicySet
from .shipped import baseline_pack_path
from .sources import PackTrust, load_pack_sources
from .step_rules import RULE_ERROR, VOCABULARY_RULES, RuleRunner
from .variables import ir_variables, step_variables

__all__ = ["BUDGET_EXCEEDED", "DEFAULT_BUDGET_MS", "DEFAULT_MAX_RULE_EVALUATIONS", "EVALUATION_ERROR", "INVALID_IR",
           "RULE_ERROR", "VOCABULARY_RULES", "PolicyEngine", "ir_variables", "publish_decision", "step_variables"]

logger = logging.getLogger(__name__)

# The budget of one decision is counted in rule evaluations (a step costs the rules and checks it
# runs, plus one): the same IR and packs always get the same answer, whatever the machine's load.
# 10,000 steps of the baseline pack take about 90,000. Wall-clock time is only a backstop against
# a rule or check that hangs, generous enough never to decide under ordinary load.
DEFAULT_MAX_RULE_EVALUATIONS = 250_000
DEFAULT_BUDGET_MS = 10_000.0

BUDGET_EXCEEDED = "BUDGET_EXCEEDED"


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
        self._budget_ns = int(budget_ms * 1_000_000)
        self._runner = RuleRunner(policy)
        self._writer = DecisionWriter(policy, hash_algorithm, limits or InputLimits())

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
    def limits(self) -> InputLimits:
        """The bounds on input read by `evaluate` and `parse` (the kernel sets them from its configuration)."""
        return self._writer.limits

    @limits.setter
    def limits(self, limits: InputLimits) -> None:
        self._writer.limits = limits

    @property
    def hash_algorithm(self) -> str:
        return self._writer.hash_algorithm

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
            decision = self._writer.invalid(source, exc.problems, start, evaluated_at)
        except Exception as exc:  # never let untrusted input escape as a traceback
            logger.exception("unexpected error while reading an ir")
            decision = self._writer.invalid(source, [InputProblem("", f"unreadable input: {type(exc).__name__}")],
                                     start, evaluated_at)
        else:
            try:
                decision = self._decide(ir, start, evaluated_at)
            except Exception as exc:
                logger.exception("unexpected error while evaluating ir %s", ir.request_id)
                decision = self._writer.failed(ir, start, evaluated_at, f"evaluation failed: {type(exc).__name__}: {exc}")
        if bus is not None:
            publish_decision(decision, bus)
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
        runner = self._runner
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
                runner.run_vocabulary(variables, index, hits, violations)
                if plan.rules:
                    runner.run_step(plan, variables, ir_meta, index, hits, violations)
                for check in self.checks:
                    if check.step is not None:
                        runner.run_check(check, lambda c=check, s=step, i=index: c.step(s, i, ir),  # type: ignore[misc]
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
                                                "constants": policy.constants})
                runner.run_ir_rules(activation, violations)
            for check in self.checks:
                if check.ir is not None:
                    runner.run_check(check, lambda c=check: c.ir(ir), None, None, violations)  # type: ignore[misc]
            if time.perf_counter_ns() > deadline:
                raise _BudgetExceeded(None, "time")
        except _BudgetExceeded as exc:
            budget = (f"its budget of {self.max_rule_evaluations} rule evaluations" if exc.budget == "rules"
                      else f"its time budget of {self.budget_ms:g} ms")
            violations.append(Violation(
                exc.step_index, BUDGET_EXCEEDED, f"evaluation exceeded {budget}"
                + (f" at step {exc.step_index}" if exc.step_index is not None else "")))
        return self._writer.conclude(ir, digest, results, violations, start, evaluated_at)
