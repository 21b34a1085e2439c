"""Running policy tests: each case's IR through the evaluator, its decision against the case's
expectations, and rule coverage (which rules, tier entries and vocabularies no case made fire).

A case fails with one message per unmet expectation; a rule that errors is just a decision with
`RULE_ERROR`, so it fails the cases that did not expect it. Packs that cannot be loaded are a
`PackLoadError` before any case runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .decision import Decision
from .evaluator import VOCABULARY_RULES, PolicyEngine
from .pack import RuleSpec, TierSpec
from .policytest import Expectation, ExpectedViolation, PolicyTestCase, PolicyTestFile

__all__ = ["POLICY_TEST_BUDGET_MS", "CaseResult", "PolicyTestRun", "RuleCoverage", "check_expectation",
           "run_policy_tests"]

POLICY_TEST_BUDGET_MS = 60_000.0


@dataclass(frozen=True)
class CaseResult:
    suite: str
    file: str
    case: str
    line: int
    engine: str
    failures: tuple[str, ...]
    status: str | None
    risk_tier: int | None
    duration_s: float

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "file": self.file, "line": self.line, "case": self.case, "engine": self.engine,
                "passed": self.passed, "failures": list(self.failures), "status": self.status,
                "risk_tier": self.risk_tier, "duration_s": round(self.duration_s, 6)}


@dataclass(frozen=True)
class RuleCoverage:
    """A rule, tier entry or vocabulary check of the packs under test and how many decisions
    it fired in (a hit or a violation). Vocabularies have no pack: `pack` is None."""

    pack: str | None
    file: str | None
    line: int
    rule: str
    hits: int

    def to_dict(self) -> dict[str, Any]:
        return {"pack": self.pack, "file": self.file, "line": self.line, "rule": self.rule, "hits": self.hits}


@dataclass
class PolicyTestRun:
    results: list[CaseResult] = field(default_factory=list)
    coverage: list[RuleCoverage] = field(default_factory=list)

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def uncovered(self) -> list[RuleCoverage]:
        return [c for c in self.coverage if c.hits == 0]

    @property
    def coverage_percent(self) -> float:
        if not self.coverage:
            return 100.0
        return 100.0 * (len(self.coverage) - len(self.uncovered)) / len(self.coverage)

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": {"cases": len(self.results), "passed": len(self.results) - len(self.failed),
                        "failed": len(self.failed), "rules": len(self.coverage),
                        "rules_hit": len(self.coverage) - len(self.uncovered),
                        "coverage_percent": round(self.coverage_percent, 2)},
            "results": [r.to_dict() for r in self.results],
            "coverage": [c.to_dict() for c in self.coverage],
        }


def _fired(decision: Decision, step: int | None = None) -> dict[str, str]:
    """Rule id -> what it said, for every hit and violation (of one step, or anywhere)."""
    out: dict[str, str] = {}
    for result in decision.steps:
        if step is None or result.index == step:
            for hit in result.hits:
                out.setdefault(hit.rule, hit.reason)
    for violation in decision.violations:
        if violation.rule is not None and (step is None or violation.step_index == step):
            out.setdefault(violation.rule, f"{violation.code}: {violation.message}")
    return out


def _hit_rules(decision: Decision, step: int | None = None) -> set[str]:
    return {h.rule for r in decision.steps if step is None or r.index == step for h in r.hits}


def _check_violations(expected: Sequence[ExpectedViolation], decision: Decision) -> list[str]:
    actual = list(decision.enforced_violations)
    used = [False] * len(actual)
    failures: list[str] = []
    for want in expected:
        for i, got in enumerate(actual):
            if not used[i] and want.matches(got.code, got.step_index, got.rule):
                used[i] = True
                break
        else:
            failures.append(f"expected violation {want} was not reported")
    for i, got in enumerate(actual):
        if not used[i]:
            where = "on the ir" if got.step_index is None else f"at step {got.step_index}"
            failures.append(f"unexpected violation `{got.code}` {where}: {got.message}")
    return failures


def check_expectation(expect: Expectation, decision: Decision) -> list[str]:
    """One message per unmet expectation; empty when the decision is as expected."""
    failures: list[str] = []
    if expect.status is not None and decision.status != expect.status:
        failures.append(f"status is `{decision.status}`, expected `{expect.status}`")
    if expect.tier is not None and decision.risk_tier != expect.tier:
        failures.append(f"risk tier is {decision.risk_tier}, expected {expect.tier}")
    if expect.requires_approval is not None and decision.requires_approval != expect.requires_approval:
        failures.append(f"requires_approval is {str(decision.requires_approval).lower()}, "
                        f"expected {str(expect.requires_approval).lower()}")
    if expect.violations is not None:
        failures += _check_violations(expect.violations, decision)
    hit = _hit_rules(decision)
    failures += [f"rule `{rule}` did not fire" for rule in expect.hits if rule not in hit]
    fired = _fired(decision)
    failures += [f"rule `{rule}` fired: {fired[rule]}" for rule in expect.not_hits if rule in fired]
    for step in expect.steps:
        if step.index >= len(decision.steps):
            failures.append(f"no step {step.index} in the decision (it has {len(decision.steps)})")
            continue
        result = decision.steps[step.index]
        if step.tier is not None and result.tier != step.tier:
            failures.append(f"step {step.index}: tier is {result.tier}, expected {step.tier}")
        step_hits = _hit_rules(decision, step.index)
        failures += [f"step {step.index}: rule `{rule}` did not fire" for rule in step.hits if rule not in step_hits]
        step_fired = _fired(decision, step.index)
        failures += [f"step {step.index}: rule `{rule}` fired: {step_fired[rule]}"
                     for rule in step.not_hits if rule in step_fired]
    if failures:
        codes = ", ".join(f"{v.code} ({v.message})" for v in decision.enforced_violations) or "none"
        failures.append(f"decision: {decision.status} tier {decision.risk_tier}; violations: {codes}")
    return failures


class _Coverage:
    """Counts, per (pack file, rule id), the decisions a rule fired in."""

    def __init__(self) -> None:
        self.rules: dict[tuple[str | None, str], RuleCoverage] = {}
        self.counts: dict[tuple[str | None, str], int] = {}

    def register(self, engine: PolicyEngine) -> None:
        for pack in engine.packs:
            specs: list[TierSpec | RuleSpec] = [*pack.tiers, *pack.rules]
            for spec in specs:
                key = (pack.file, spec.id)
                if key not in self.rules:
                    line, _ = pack.locate((*spec.path, "id"))
                    self.rules[key] = RuleCoverage(pack.name, pack.file, line, spec.id, 0)
                    self.counts[key] = 0
        policy = engine.policy
        for present, rule in ((policy.actions, VOCABULARY_RULES["actions"]),
                              (policy.providers, VOCABULARY_RULES["providers"]),
                              (policy.provider_families, VOCABULARY_RULES["families"])):
            if present and (None, rule) not in self.rules:
                self.rules[(None, rule)] = RuleCoverage(None, None, 0, rule, 0)
                self.counts[(None, rule)] = 0

    def record(self, engine: PolicyEngine, decision: Decision) -> None:
        files = {p.name: p.file for p in engine.packs}
        fired: set[tuple[str | None, str]] = set()
        for result in decision.steps:
            for hit in result.hits:
                fired.add((files.get(hit.pack or ""), hit.rule))
        for violation in decision.violations:
            if violation.rule is not None:
                fired.add((files.get(violation.pack) if violation.pack else None, violation.rule))
        for key in fired:
            if key in self.counts:
                self.counts[key] += 1

    def report(self) -> list[RuleCoverage]:
        items = [RuleCoverage(c.pack, c.file, c.line, c.rule, self.counts[key]) for key, c in self.rules.items()]
        return sorted(items, key=lambda c: (c.file is not None, c.file or "", c.line, c.rule))


def _outcome(decision: Decision) -> tuple[Any, ...]:
    """What engines must agree on: status, tiers, violations (code, step, rule) and rule hits.
    Messages are left out: engines word their runtime errors differently."""
    return (decision.status, decision.risk_tier, tuple(s.tier for s in decision.steps),
            tuple((v.code, v.step_index, v.rule) for v in decision.violations),
            tuple(sorted((h.rule, r.index) for r in decision.steps for h in r.hits)))


def _describe(engine: str, decision: Decision) -> str:
    codes = ", ".join(v.code for v in decision.violations)
    return f"{engine} {decision.status} tier {decision.risk_tier}" + (f" ({codes})" if codes else "")


def _disagreement(decisions: Sequence[tuple[str, Decision]]) -> str | None:
    """A failure message when the engines did not decide a case alike, naming every result."""
    if len({_outcome(d) for _, d in decisions}) <= 1:
        return None
    return "engines disagree: " + " vs ".join(_describe(name, d) for name, d in decisions)


def _run_case(suite: PolicyTestFile, case: PolicyTestCase, engine: PolicyEngine,
              coverage: _Coverage) -> tuple[CaseResult, Decision]:
    started = time.perf_counter()
    decision = engine.evaluate(case.ir)
    failures = check_expectation(case.expect, decision)
    coverage.record(engine, decision)
    return CaseResult(suite.name, suite.file, case.name, case.line, engine.engine_name, tuple(failures),
                      decision.status, decision.risk_tier, time.perf_counter() - started), decision


def run_policy_tests(files: Iterable[PolicyTestFile], engines: Sequence[str] = ("auto",), *,
                     use_plugins: bool = False, budget_ms: float = POLICY_TEST_BUDGET_MS,
                     functions: Mapping[str, Callable[..., Any]] | None = None,
                     checks: Iterable[Any] = ()) -> PolicyTestRun:
    """Run every case of `files` on each engine in `engines`; with several engines, a case they
    decide differently fails on each, naming every engine's result. Every pack set is loaded and
    compiled first, so a broken pack raises `PackLoadError` before any case runs. The time
    budget defaults to a generous one: policy tests judge what rules decide, and a busy CI
    machine must not turn a case into `BUDGET_EXCEEDED`. `functions` and `checks` are added to
    those of installed plugins (`use_plugins`): `irgov_policy.testing` passes a plugin's own."""
    checks = list(checks)
    files = list(files)
    cache: dict[tuple[tuple[str, ...], str], PolicyEngine] = {}
    plan: list[tuple[PolicyTestFile, PolicyEngine]] = []
    for suite in files:
        for engine_name in engines:
            key = (tuple(sorted(str(Path(p).resolve()) for p in suite.packs)), engine_name)
            if key not in cache:
                cache[key] = PolicyEngine.from_paths(list(suite.packs), engine_name, use_plugins=use_plugins,
                                                     budget_ms=budget_ms, functions=functions, checks=checks)
            plan.append((suite, cache[key]))
    coverage = _Coverage()
    for engine in cache.values():
        coverage.register(engine)
    run = PolicyTestRun()
    decided: dict[tuple[str, int], list[tuple[int, str, Decision]]] = {}
    for suite, engine in plan:
        for case in suite.cases:
            result, decision = _run_case(suite, case, engine, coverage)
            decided.setdefault((suite.file, case.line), []).append((len(run.results), engine.engine_name, decision))
            run.results.append(result)
    # A case the engines decide differently fails on each of them, whatever it expected.
    for outcomes in decided.values():
        message = _disagreement([(name, decision) for _, name, decision in outcomes])
        if message is not None:
            for position, _, _ in outcomes:
                result = run.results[position]
                run.results[position] = replace(result, failures=(*result.failures, message))
    run.coverage = coverage.report()
    return run
