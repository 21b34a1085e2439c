"""Running the rules and checks of one step (or of the whole IR) and recording what they say.

Per step: the batch programs of the plan's unguarded rules in one activation, the content guards
of the guarded ones (a refuted rule is false without CEL, the others run their own program), then
each rule's native `match`; only when a batch program errors are its rules evaluated one by one,
to name the rule that failed. `record` combines `match` and `when` as CEL's `&&` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .cel.base import CelEvalError
from .checks import Finding, PythonCheck
from .decision import RuleHit, Violation
from .functions import family
from .policyset import CompiledRule, PolicySet
from .primitives import PrimitiveError
from .rule_index import GuardedRule, StepPlan

__all__ = ["RULE_ERROR", "UNKNOWN_ACTION_REASON", "VOCABULARY_RULES", "RuleRunner", "rule_error"]

RULE_ERROR = "RULE_ERROR"
# Rule ids reported for the declarative vocabulary sections (united across packs, so no one
# pack owns them: their violations carry `pack: null`).
UNKNOWN_ACTION_REASON = "unknown action: treated as critical (fail closed)"
VOCABULARY_RULES = {"actions": "vocabularies.actions", "providers": "vocabularies.providers",
                    "families": "providerFamilies"}


def rule_error(pack: str, rule: str, message: str, index: int | None) -> Violation:
    return Violation(index, RULE_ERROR, f"rule `{rule}` in pack `{pack}` failed: {message}", "ERROR", pack, rule)


class RuleRunner:
    """Runs a `PolicySet`'s rules for one step or for the IR, appending to `hits` and `violations`."""

    def __init__(self, policy: PolicySet) -> None:
        self.policy = policy
        self.engine = policy.engine

    def run_vocabulary(self, variables: dict[str, Any], index: int, hits: list[RuleHit],
                       violations: list[Violation]) -> None:
        """The native primitives of the vocabularies: the action's tier entries (an unknown action
        is critical), an unknown provider, a provider of another family than the action."""
        policy = self.policy
        action, provider = variables["action"], variables["provider"]
        if action in policy.actions:
            for entry in policy.tier_entries(action):
                hits.append(RuleHit(entry.pack.name, entry.spec.id, entry.spec.tier, entry.spec.reason,
                                    entry.spec.mode))
        else:
            violations.append(Violation(index, "UNKNOWN_ACTION", f"unknown action `{action}`",
                                        rule=VOCABULARY_RULES["actions"]))
            # Fail closed: an action no pack knows is as risky as the riskiest one.
            hits.append(RuleHit("-", VOCABULARY_RULES["actions"], 3, UNKNOWN_ACTION_REASON, "enforce"))
        if provider not in policy.providers:
            violations.append(Violation(index, "UNKNOWN_PROVIDER", f"unknown provider `{provider}`",
                                        rule=VOCABULARY_RULES["providers"]))
        elif policy.provider_mismatch.native(variables):
            violations.append(Violation(
                index, "PROVIDER_MISMATCH",
                f"provider `{provider}` does not serve actions of family `{family(action)}`",
                rule=VOCABULARY_RULES["families"]))

    def run_step(self, plan: StepPlan, variables: dict[str, Any], ir_meta: dict[str, Any], index: int,
                 hits: list[RuleHit], violations: list[Violation]) -> None:
        engine = self.engine
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
                        data["constants"] = self.policy.constants
                        activation = engine.activation(data)
                    values.extend(self.evaluate_one(rule, activation) for rule in chunk)
        token_cache: dict[str, frozenset[str]] = {}
        for rule, source in plan.entries:
            when: Any
            if source is None:
                when = True
            elif type(source) is int:
                when = values[source]
            else:
                assert isinstance(source, GuardedRule)
                for guard in source.guards:
                    if guard.refutes(variables, ir_meta, token_cache):
                        break
                else:
                    guard = None
                if guard is not None:
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
            self.record(rule, matched, when, index, hits, violations)

    def _activation_data(self, plan: StepPlan, variables: dict[str, Any], ir_meta: dict[str, Any]) -> dict[str, Any]:
        # Converting variables into an activation costs time: only the fields of `step` some rule
        # reads, and `ir` or `constants` only when a program of the plan reads them.
        fields = self.policy.step_fields
        data: dict[str, Any] = {"step": variables if fields is None else {f: variables[f] for f in fields
                                                                          if f in variables}}
        for name in plan.variables:
            data[name] = ir_meta if name == "ir" else self.policy.constants
        return data

    def evaluate_one(self, rule: CompiledRule, activation: Any) -> Any:
        try:
            return self.engine.evaluate(rule.program, activation)
        except CelEvalError as exc:
            return exc

    def run_ir_rules(self, activation: Any, violations: list[Violation]) -> None:
        for rule in self.policy.ir_rules:
            self.record(rule, True, self.evaluate_one(rule, activation), None, None, violations)

    @staticmethod
    def record(rule: CompiledRule, matched: Any, when: Any, index: int | None, hits: list[RuleHit] | None,
               violations: list[Violation]) -> None:
        """Combine `match` and `when` as CEL's `&&` does (false wins over an error), then
        report a hit, a violation, or a RULE_ERROR for an error or a non-boolean result.
        `hits` is None where no tier can be raised (rules of scope `ir`)."""
        if matched is False or when is False:
            return
        spec = rule.spec
        for part in (matched, when):
            if isinstance(part, Exception):
                violations.append(rule_error(rule.pack.name, spec.id, str(part), index))
                return
        if when is not True:
            violations.append(rule_error(rule.pack.name, spec.id,
                                         f"condition returned `{when!r}`, not a boolean", index))
            return
        if spec.violation is not None:
            violations.append(Violation(index, spec.violation.code, spec.violation.message,
                                        spec.violation.severity, rule.pack.name, spec.id, spec.mode))
        elif hits is None:
            # The pack schema already refuses a tier on a rule of scope `ir`: fail closed anyway.
            violations.append(rule_error(rule.pack.name, spec.id, "a rule of scope `ir` raised a tier", index))
        else:
            hits.append(RuleHit(rule.pack.name, spec.id, spec.tier, spec.reason or "", spec.mode))

    @staticmethod
    def run_check(check: PythonCheck, call: Callable[[], Iterable[Finding]], index: int | None,
                  hits: list[RuleHit] | None, violations: list[Violation]) -> None:
        try:
            findings = list(call())
        except Exception as exc:
            violations.append(rule_error(check.pack, check.name, f"{type(exc).__name__}: {exc}", index))
            return
        for finding in findings:
            problem = finding.problem() if isinstance(finding, Finding) else "a check must yield `Finding` objects"
            if problem:
                violations.append(rule_error(check.pack, getattr(finding, "rule", check.name), problem, index))
            elif finding.code is not None:
                violations.append(Violation(index, finding.code, finding.message or finding.code,
                                            finding.severity, check.pack, finding.rule, finding.mode))
            elif index is None or hits is None:
                # An IR-wide tier has no step to raise; report it as an explicit violation instead.
                violations.append(rule_error(check.pack, finding.rule, "an ir check returned a tier", None))
            else:
                hits.append(RuleHit(check.pack, finding.rule, finding.tier, finding.reason or "", finding.mode))
