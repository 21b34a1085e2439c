"""A candidate pack set proved before it may be put in force: loaded (bundles verified under the
trust settings), composed, linted on every installed engine, and its policy tests run when the
pack folders hold any (`*.irgov-test.yaml`).

Each bundle is read once: the packs loaded and the files linted and tested are the same bytes,
even if the bundle file is replaced meanwhile.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import BundleError, PackLoadError, PolicyError, PolicyTestLoadError
from .bundle import is_bundle_path
from .evaluator import PolicyEngine
from .lint import lint_paths
from .pack import RulePack, load_pack
from .plugin_hooks import collect_cel_functions
from .policytest import find_policy_tests, load_policy_test
from .sources import PackTrust, bundle_packs, expand_pack_paths, read_trusted_bundle
from .testing_runner import run_policy_tests

__all__ = ["CandidateError", "prove_candidate"]

Compose = Callable[[list[RulePack]], PolicyEngine]


class CandidateError(PolicyError):
    """The candidate set failed a stage; the message is one line naming the stage and the place."""


def _one_line(exc: Exception) -> str:
    lines = str(exc).splitlines() or [type(exc).__name__]
    return lines[0] + (f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else "")


def prove_candidate(sources: Sequence[str], compose: Compose, *, trust: PackTrust | None = None,
                    engine: str = "auto", lint: bool = True, tests: bool = True) -> PolicyEngine:
    """Load, compose, lint and test the packs of `sources`; return the engine, or raise
    `CandidateError` (or `BundleError` for a refused bundle) with the first reason."""
    with tempfile.TemporaryDirectory(prefix="irgov-candidate-") as scratch:
        packs: list[RulePack] = []
        lint_roots: list[Path] = []
        test_roots: list[Path] = []
        try:
            for index, item in enumerate(sources):
                if is_bundle_path(item):
                    bundle = read_trusted_bundle(item, trust)
                    packs.extend(bundle_packs(bundle))
                    root = Path(scratch) / str(index)
                    bundle.extract(root)
                    lint_roots.append(root)
                    test_roots.append(root)
                    continue
                if trust is not None and trust.require_signed:
                    raise BundleError(f"rule pack source `{item}` is not a signed bundle and "
                                      "`require_signed_packs` is on", item)
                files = expand_pack_paths([item])
                packs.extend(load_pack(f) for f in files)
                lint_roots.extend(files)
                path = Path(item)
                test_roots.append(path if path.is_dir() else path.parent)
            engine_built = compose(packs)
        except BundleError:
            raise
        except PackLoadError as exc:
            raise CandidateError(f"load: {_one_line(exc)}") from None
        if lint and lint_roots:
            report = lint_paths(lint_roots, functions=collect_cel_functions())
            if report.errors:
                first = report.errors[0]
                more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
                raise CandidateError(f"lint: {first}{more}")
        if tests and test_roots:
            _run_tests(test_roots, engine)
        return engine_built


def _run_tests(roots: Sequence[Path], engine: str) -> None:
    seen: set[Path] = set()
    files = []
    for found in find_policy_tests(list(dict.fromkeys(roots))):
        if found.resolve() not in seen:
            seen.add(found.resolve())
            files.append(found)
    if not files:
        return
    try:
        suites = [load_policy_test(f) for f in files]
        run = run_policy_tests(suites, (engine,), use_plugins=True)
    except (PolicyTestLoadError, PackLoadError) as exc:
        raise CandidateError(f"policy tests: {_one_line(exc)}") from None
    if run.failed:
        first = run.failed[0]
        more = f" (and {len(run.failed) - 1} more failing cases)" if len(run.failed) > 1 else ""
        raise CandidateError(f"policy tests: case `{first.case}` of `{first.file}`:{first.line} fails: "
                             f"{first.failures[0]}{more}")
