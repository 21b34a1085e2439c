"""Pytest fixtures and helpers for plugin and rule-pack authors (an opt-in pytest plugin).

Enable it in a test suite's `conftest.py`::

    pytest_plugins = ["irgov_policy.testing"]

Then a test builds an engine from exactly the packs and plugins it names, so what is installed
in the environment never leaks into it (and the same test shows how a plugin changes decisions
against the baseline alone)::

    def test_my_rule(irgov_engine_factory, irgov_events):
        baseline = irgov_engine_factory()                       # the shipped baseline pack only
        mine = irgov_engine_factory(plugins=[my_plugin])        # + my plugin's packs, checks, functions
        ir = make_ir(make_step("odoo.update_record", params={"model": "res.users", "ids": [7]}))
        assert_decision(baseline.evaluate(ir), status="PASS", tier=0)
        decision = mine.evaluate(ir, bus=irgov_events.bus)
        assert_decision(decision, status="ESCALATE", tier=3, hits=["my.rule"])
        assert irgov_events.types() == ["ir.validated_escalate"]

Helpers (importable without pytest fixtures): `make_step`, `make_ir`, `build_engine`,
`EventCapture`, `deliver`, `assert_decision`, `assert_hit`, `assert_no_hit`, `fired_rules`,
`explain`, `run_plugin_policy_tests`, `assert_policy_tests_pass`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from .errors import PluginError
from .events.bus import EventBus, MemorySink
from .events.envelope import Event
from .events.relay import deliver_once
from .plugins import IrgovPluginManager
from .policy.decision import Decision, RuleHit, Violation
from .policy.evaluator import PolicyEngine
from .policy.plugin_hooks import collect_cel_functions, collect_checks, collect_rule_pack_paths
from .policy.policytest import find_policy_tests, load_policy_test
from .policy.shipped import baseline_pack_path
from .policy.testing_runner import PolicyTestRun, run_policy_tests

__all__ = [
    "DEFAULT_PROVIDERS",
    "TEST_BUDGET_MS",
    "EngineFactory",
    "EventCapture",
    "assert_decision",
    "assert_hit",
    "assert_no_hit",
    "assert_policy_tests_pass",
    "build_engine",
    "deliver",
    "explain",
    "fired_rules",
    "irgov_engine_factory",
    "irgov_events",
    "irgov_ir",
    "irgov_step",
    "make_ir",
    "make_step",
    "plugin_manager_for",
    "run_plugin_policy_tests",
]

# A provider of the matching family for each action family of the baseline vocabulary, so a test
# names only the action it is about.
DEFAULT_PROVIDERS: Mapping[str, str] = {
    "deploy": "deploy.docker",
    "dns": "dns.cloudflare",
    "odoo": "odoo.v17",
    "webgen": "webgen.v1",
    "webgenesis": "webgenesis.v1",
    "course": "course_factory.v1",
    "infra": "infra.terraform",
}

# Tests run on loaded machines (CI, parallel suites); a decision that exceeds the production
# budget there would turn into a BUDGET_EXCEEDED REJECT and fail a test about something else.
TEST_BUDGET_MS = 10_000.0

_OMIT: Any = object()
_KEYS = itertools.count(1)


# -- IR builders ---------------------------------------------------------------------------------

def make_step(action: str = "course.create", provider: str | None = None, *, resource: str = "test-resource",
              params: Mapping[str, Any] | None = None, idempotency_key: str | None = _OMIT,
              constraints: Mapping[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """One step as the JSON a pipeline sends. `provider` defaults to one of the action's family
    (`DEFAULT_PROVIDERS`); `idempotency_key` defaults to a fresh unique key and `None` leaves
    it out (to test `MISSING_IDEMPOTENCY_KEY`). Other fields (`budget_cents`, `step_id`,
    `description`) are passed through as given."""
    if provider is None:
        provider = DEFAULT_PROVIDERS.get(action.split(".", 1)[0], "unknown.provider")
    step: dict[str, Any] = {"action": action, "provider": provider, "resource": resource,
                            "params": dict(params or {}), "constraints": dict(constraints or {})}
    if idempotency_key is _OMIT:
        step["idempotency_key"] = f"test-key-{next(_KEYS)}"
    elif idempotency_key is not None:
        step["idempotency_key"] = idempotency_key
    step.update(fields)
    return step


def make_ir(*steps: Mapping[str, Any], tenant_id: str = "tenant-test", request_id: str = "req-test",
            **fields: Any) -> dict[str, Any]:
    """An IR document with the given steps (one `course.create` step when none is given).
    Other fields (`created_at`, `intent_summary`, `labels`) are passed through."""
    ir: dict[str, Any] = {"tenant_id": tenant_id, "request_id": request_id,
                          "steps": [dict(s) for s in steps] or [make_step()]}
    ir.update(fields)
    return ir


# -- engines -------------------------------------------------------------------------------------

def plugin_manager_for(plugins: Iterable[object]) -> IrgovPluginManager:
    """A private plugin manager holding only `plugins` (modules or objects with `irgov_*` hook
    implementations). A broken plugin fails here with the one-line `PluginError` an installed
    one gets (misspelt hook, wrong signature, a raise, a name registered twice)."""
    manager = IrgovPluginManager()
    for plugin in plugins:
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{id(plugin)}"
        manager.register(plugin, name=name)
    manager.registrations()
    return manager


def build_engine(packs: Iterable[str | Path] = (), plugins: Iterable[object] = (), *, baseline: bool = True,
                 engine: str = "auto", functions: Mapping[str, Callable[..., Any]] | None = None,
                 checks: Iterable[Any] = (), **options: Any) -> PolicyEngine:
    """A `PolicyEngine` from exactly: the baseline pack (unless `baseline=False`), `packs` (files
    or directories), and the rule packs, CEL functions and checks of `plugins`. Installed
    entry-point plugins are not used. `options` go to `PolicyEngine.from_packs` (`budget_ms`,
    default `TEST_BUDGET_MS`; `hash_algorithm`)."""
    options.setdefault("budget_ms", TEST_BUDGET_MS)
    plugins = list(plugins)
    paths: list[str | Path] = [baseline_pack_path()] if baseline else []
    paths.extend(packs)
    all_functions: dict[str, Callable[..., Any]] = {}
    # Raw objects: `from_packs` normalises them, and refuses what is not a check.
    all_checks: list[Any] = list(checks)
    if plugins:
        manager = plugin_manager_for(plugins)
        paths.extend(collect_rule_pack_paths(manager))
        all_functions.update(collect_cel_functions(manager))
        all_checks.extend(collect_checks(manager))
    for name, function in (functions or {}).items():
        if name in all_functions:
            raise PluginError(f"cel function `{name}` is registered twice")
        all_functions[name] = function
    return PolicyEngine.from_paths(paths, engine, use_plugins=False, functions=all_functions,
                                   checks=all_checks, **options)


class EngineFactory:
    """Builds engines like `build_engine` and keeps them for the session: compiling packs is the
    slow part, and an engine is immutable, so tests may share it."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], PolicyEngine] = {}

    def __call__(self, packs: Iterable[str | Path] = (), plugins: Iterable[object] = (), *,
                 baseline: bool = True, engine: str = "auto") -> PolicyEngine:
        packs, plugins = list(packs), list(plugins)
        key = (tuple(str(Path(p).resolve()) for p in packs), tuple(id(p) for p in plugins), baseline, engine)
        found = self._cache.get(key)
        if found is None:
            found = build_engine(packs, plugins, baseline=baseline, engine=engine)
            self._cache[key] = found
        return found


# -- events --------------------------------------------------------------------------------------

class EventCapture:
    """An in-memory event bus whose events a test can read: pass `capture.bus` to
    `engine.evaluate(ir, bus=...)` (or to anything that publishes), then inspect."""

    def __init__(self) -> None:
        self.sink = MemorySink("irgov-testing")
        # No observers: installed `irgov_on_event` plugins must not see test events.
        self.bus = EventBus([self.sink], autostart=False, observers=False)

    @property
    def events(self) -> list[Event]:
        return list(self.sink.events)

    def types(self) -> list[str]:
        return self.sink.types()

    def of_type(self, event_type: str) -> list[Event]:
        return self.sink.of_type(event_type)

    def payloads(self, event_type: str) -> list[Mapping[str, Any]]:
        return [e.payload for e in self.sink.of_type(event_type)]

    def last(self) -> Event:
        events = self.sink.events
        assert events, "no event was published"
        return events[-1]

    def clear(self) -> None:
        self.sink.clear()

    def close(self) -> None:
        self.bus.close()


# -- assertions ----------------------------------------------------------------------------------

def _step_hits(decision: Decision, step: int | None = None) -> Iterator[tuple[int, RuleHit]]:
    for result in decision.steps:
        if step is None or result.index == step:
            for hit in result.hits:
                yield result.index, hit


def _violations(decision: Decision, step: int | None = None) -> Iterator[Violation]:
    for violation in decision.violations:
        if step is None or violation.step_index == step:
            yield violation


def fired_rules(decision: Decision, step: int | None = None, *, include_audit: bool = True) -> set[str]:
    """Ids of every rule, tier entry and check finding that fired (tier hits and violations),
    on every step or on step `step`."""
    rules = {hit.rule for _, hit in _step_hits(decision, step) if include_audit or hit.mode == "enforce"}
    rules |= {v.rule for v in _violations(decision, step)
              if v.rule is not None and (include_audit or v.mode == "enforce")}
    return rules


def explain(decision: Decision) -> str:
    """A compact multi-line account of a decision, for assertion messages."""
    lines = [f"{decision.status} tier {decision.risk_tier} (engine {decision.engine}, packs "
             + ", ".join(p["name"] for p in decision.packs) + ")"]
    for result in decision.steps:
        lines.append(f"  step {result.index} {result.action} via {result.provider}: tier {result.tier}")
        for hit in result.hits:
            lines.append(f"    hit {hit.pack}/{hit.rule} tier {hit.tier} [{hit.mode}]: {hit.reason}")
    for violation in decision.violations:
        lines.append(f"  violation step {violation.step_index} {violation.code} {violation.severity} "
                     f"{violation.pack}/{violation.rule} [{violation.mode}]: {violation.message}")
    return "\n".join(lines)


def assert_decision(decision: Decision, *, status: str | None = None, tier: int | None = None,
                    requires_approval: bool | None = None, codes: Iterable[str] | None = None,
                    hits: Iterable[str] = (), no_hits: Iterable[str] = ()) -> None:
    """Assert a decision's status, IR tier, approval flag, the exact set of enforced violation
    codes (`codes=[]` means none), rules that fired and rules that did not. The failure message
    explains the whole decision."""
    problems: list[str] = []
    if status is not None and decision.status != status:
        problems.append(f"status is {decision.status}, expected {status}")
    if tier is not None and decision.risk_tier != tier:
        problems.append(f"tier is {decision.risk_tier}, expected {tier}")
    if requires_approval is not None and decision.requires_approval != requires_approval:
        problems.append(f"requires_approval is {decision.requires_approval}, expected {requires_approval}")
    if codes is not None:
        actual, wanted = set(decision.violation_codes()), set(codes)
        if actual != wanted:
            problems.append(f"violation codes are {sorted(actual)}, expected {sorted(wanted)}")
    fired = fired_rules(decision)
    missing = [r for r in hits if r not in fired]
    if missing:
        problems.append(f"rules did not fire: {missing}")
    unexpected = [r for r in no_hits if r in fired]
    if unexpected:
        problems.append(f"rules fired but should not: {unexpected}")
    if problems:
        raise AssertionError("; ".join(problems) + "\n" + explain(decision))


def assert_hit(decision: Decision, rule: str, *, step: int | None = None, tier: int | None = None,
               pack: str | None = None, mode: str | None = None, code: str | None = None) -> None:
    """Assert that `rule` fired (on step `step` when given) as a tier hit with `tier`, or as a
    violation with `code`, from `pack`, in `mode`."""
    candidates: list[tuple[str | None, int | None, str | None, str]] = [
        (hit.pack, hit.tier, None, hit.mode) for _, hit in _step_hits(decision, step) if hit.rule == rule]
    candidates += [(v.pack, None, v.code, v.mode) for v in _violations(decision, step) if v.rule == rule]
    for found_pack, found_tier, found_code, found_mode in candidates:
        if ((tier is None or found_tier == tier) and (pack is None or found_pack == pack)
                and (mode is None or found_mode == mode) and (code is None or found_code == code)):
            return
    where = "" if step is None else f" on step {step}"
    wanted = ", ".join(f"{k}={v}" for k, v in (("tier", tier), ("pack", pack), ("mode", mode), ("code", code))
                       if v is not None)
    raise AssertionError(f"rule `{rule}` did not fire{where}" + (f" with {wanted}" if wanted else "")
                         + "\n" + explain(decision))


def assert_no_hit(decision: Decision, rule: str, *, step: int | None = None) -> None:
    """Assert that `rule` did not fire (on step `step` when given), in any mode."""
    if rule in fired_rules(decision, step):
        where = "" if step is None else f" on step {step}"
        raise AssertionError(f"rule `{rule}` fired{where}\n" + explain(decision))


# -- sinks and policy tests -----------------------------------------------------------------------

def deliver(sink: Any, event: Event, *, timeout: float = 10.0) -> None:
    """Deliver `event` to `sink` exactly as the relay does (a plain or an `async def deliver`);
    raise when the relay would count a failure and retry: the sink raised, returned False, or
    an async sink did not answer within `timeout` seconds (`DeliveryFailed`)."""
    deliver_once(sink, event, timeout=timeout)


def run_plugin_policy_tests(paths: Iterable[str | Path], plugins: Iterable[object] = (), *,
                            engines: Iterable[str] = ("auto",)) -> PolicyTestRun:
    """Run the `*.irgov-test.yaml` files under `paths` as `irgov test --plugins` does, with the
    CEL functions and checks of exactly `plugins` (installed or not)."""
    paths = list(paths)
    files = find_policy_tests(paths)
    if not files:
        raise AssertionError(f"no policy tests (`*.irgov-test.yaml`) in {[str(p) for p in paths]}")
    manager = plugin_manager_for(plugins)
    return run_policy_tests([load_policy_test(f) for f in files], list(engines),
                            functions=collect_cel_functions(manager), checks=collect_checks(manager))


def assert_policy_tests_pass(paths: Iterable[str | Path], plugins: Iterable[object] = (), *,
                             engines: Iterable[str] = ("auto",)) -> PolicyTestRun:
    """`run_plugin_policy_tests`, failing with every failed case and its reasons."""
    paths = list(paths)
    run = run_plugin_policy_tests(paths, plugins, engines=engines)
    if run.failed:
        raise AssertionError("\n".join(f"{r.file}:{r.line}: case `{r.case}` on {r.engine}: " + "; ".join(r.failures)
                                       for r in run.failed))
    return run


# -- fixtures ------------------------------------------------------------------------------------

_FACTORY = EngineFactory()


@pytest.fixture(scope="session")
def irgov_engine_factory() -> EngineFactory:
    """`factory(packs=(), plugins=(), *, baseline=True, engine="auto") -> PolicyEngine`: an engine
    from exactly the baseline, `packs` and `plugins`, cached for the session."""
    return _FACTORY


@pytest.fixture
def irgov_events() -> Iterator[EventCapture]:
    """An `EventCapture`: `irgov_events.bus` to publish into, then `types()`, `of_type()`,
    `payloads()`, `last()`."""
    capture = EventCapture()
    yield capture
    capture.close()


@pytest.fixture
def irgov_ir() -> Callable[..., dict[str, Any]]:
    """`make_ir` as a fixture: `irgov_ir(step, ...)`."""
    return make_ir


@pytest.fixture
def irgov_step() -> Callable[..., dict[str, Any]]:
    """`make_step` as a fixture: `irgov_step("odoo.update_record", params={...})`."""
    return make_step

