"""Policy: rule packs, their CEL engines, the evaluator and its decisions.

Typical use::

    engine = PolicyEngine.default()                 # shipped baseline + plugin packs, engine auto
    decision = engine.evaluate(raw_json_bytes, bus=bus)
    decision.status, decision.risk_tier, decision.to_dict()
"""

from .cel.base import CelCompileError, CelEngine, CelEvalError, available_engines, create_engine
from .checks import Finding, PythonCheck
from .decision import Decision, HighRiskStep, RuleHit, Status, StepResult, Violation
from .evaluator import DEFAULT_BUDGET_MS, VOCABULARY_RULES, PolicyEngine, ir_variables, step_variables
from .functions import normalize_text, string_tokens, tokens
from .pack import RulePack, RuleSpec, TierSpec, ViolationSpec, load_pack, parse_pack, rulepack_schema
from .policyset import CompiledRule, PolicySet, TierEntry
from .primitives import ActionTierMatch, Primitive, ProviderMismatch, UnknownAction, UnknownProvider
from .shipped import baseline_pack_path

__all__ = [
    "DEFAULT_BUDGET_MS",
    "VOCABULARY_RULES",
    "ActionTierMatch",
    "CelCompileError",
    "CelEngine",
    "CelEvalError",
    "CompiledRule",
    "Decision",
    "Finding",
    "HighRiskStep",
    "PolicyEngine",
    "PolicySet",
    "Primitive",
    "ProviderMismatch",
    "PythonCheck",
    "RulePack",
    "RuleHit",
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
    "ir_variables",
    "load_pack",
    "normalize_text",
    "parse_pack",
    "rulepack_schema",
    "step_variables",
    "string_tokens",
    "tokens",
]
