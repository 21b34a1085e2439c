"""Policy: rule packs, their CEL engines, the evaluator and its decisions.

Typical use::

    engine = PolicyEngine.default()                 # shipped baseline + plugin packs, engine auto
    decision = engine.evaluate(raw_json_bytes, bus=bus)
    decision.status, decision.risk_tier, decision.to_dict()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .cel.base import CelCompileError, CelEngine, CelEvalError, available_engines, create_engine
from .checks import Finding, PythonCheck
from .decision import Decision, HighRiskStep, RuleHit, Status, StepResult, Violation
from .evaluator import DEFAULT_BUDGET_MS, VOCABULARY_RULES, PolicyEngine, ir_variables, step_variables
from .functions import normalize_text, string_tokens, tokens
from .pack import RulePack, RuleSpec, TierSpec, ViolationSpec, load_pack, parse_pack, rulepack_schema
from .policyset import CompiledRule, PolicySet, TierEntry
from .policytest import PolicyTestCase, PolicyTestFile, find_policy_tests, load_policy_test, policytest_schema
from .primitives import ActionTierMatch, Primitive, ProviderMismatch, UnknownAction, UnknownProvider
from .shipped import baseline_pack_path

if TYPE_CHECKING:
    from .lint import LintReport as LintReport
    from .lint import lint_paths as lint_paths
    from .testing_runner import CaseResult as CaseResult
    from .testing_runner import PolicyTestRun as PolicyTestRun
    from .testing_runner import RuleCoverage as RuleCoverage
    from .testing_runner import run_policy_tests as run_policy_tests

# The linter and the policy test runner load every CEL engine: imported on first use, so that
# deciding (`irgov check`, the HTTP API) starts without them.
_LAZY = {
    "LintReport": ".lint",
    "lint_paths": ".lint",
    "CaseResult": ".testing_runner",
    "PolicyTestRun": ".testing_runner",
    "RuleCoverage": ".testing_runner",
    "run_policy_tests": ".testing_runner",
}

__all__ = [
    "DEFAULT_BUDGET_MS",
    "VOCABULARY_RULES",
    "ActionTierMatch",
    "CaseResult",
    "CelCompileError",
    "CelEngine",
    "CelEvalError",
    "CompiledRule",
    "Decision",
    "Finding",
    "HighRiskStep",
    "LintReport",
    "PolicyEngine",
    "PolicySet",
    "PolicyTestCase",
    "PolicyTestFile",
    "PolicyTestRun",
    "Primitive",
    "ProviderMismatch",
    "PythonCheck",
    "RuleCoverage",
    "RuleHit",
    "RulePack",
    "RuleSpec",
    "Status",
    "StepResult",
    "TierEntry",
    "TierSpec",
    "UnknownAction",
    "UnknownProvider",
    "Violation",
    "ViolationSpec",
    "available_engines",
    "baseline_pack_path",
    "create_engine",
    "find_policy_tests",
    "ir_variables",
    "lint_paths",
    "load_pack",
    "load_policy_test",
    "normalize_text",
    "parse_pack",
    "policytest_schema",
    "rulepack_schema",
    "run_policy_tests",
    "step_variables",
    "string_tokens",
    "tokens",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module `{__name__}` has no attribute `{name}`")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
