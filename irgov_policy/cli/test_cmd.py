"""`irgov test`: run policy tests (`*.irgov-test.yaml`), optionally with rule coverage.

Every case runs on every installed CEL engine unless `--engine` names one; a case the engines
decide differently fails, naming both results.

Exit codes: 0 every case passed (and coverage reached `--fail-under`), 1 usage or load error,
2 a case failed or coverage is under the bar.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import click
from rich.console import Console
from rich.markup import escape

from ..errors import PackLoadError, PolicyError, PolicyTestLoadError
from ..policy.cel.base import available_engines
from ..policy.policytest import find_policy_tests, load_policy_test
from ..policy.testing_runner import PolicyTestRun, run_policy_tests
from ._common import fail
from .options import format_option

__all__ = ["EXIT_TESTS_FAILED", "junit_xml", "test_command"]

EXIT_TESTS_FAILED = 2


def junit_xml(run: PolicyTestRun) -> str:
    """JUnit XML: one `testsuite` per policy test file and engine, one `testcase` per case."""
    root = ET.Element("testsuites", name="irgov policy tests", tests=str(len(run.results)),
                      failures=str(len(run.failed)))
    suites: dict[tuple[str, str], ET.Element] = {}
    for result in run.results:
        key = (result.file, result.engine)
        suite = suites.get(key)
        if suite is None:
            suite = ET.SubElement(root, "testsuite", name=f"{result.suite} [{result.engine}]", file=result.file,
                                  tests="0", failures="0", errors="0", skipped="0", time="0")
            if run.coverage:
                properties = ET.SubElement(suite, "properties")
                ET.SubElement(properties, "property", name="rule_coverage_percent",
                              value=f"{run.coverage_percent:.2f}")
            suites[key] = suite
        suite.set("tests", str(int(suite.get("tests", "0")) + 1))
        suite.set("time", f"{float(suite.get('time', '0')) + result.duration_s:.6f}")
        case = ET.SubElement(suite, "testcase", name=result.case, classname=f"{result.suite}.{result.engine}",
                             file=result.file, line=str(result.line), time=f"{result.duration_s:.6f}")
        if result.failures:
            suite.set("failures", str(int(suite.get("failures", "0")) + 1))
            failure = ET.SubElement(case, "failure", message=result.failures[0], type="PolicyTestFailure")
            failure.text = "\n".join(result.failures)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _print_pretty(console: Console, run: PolicyTestRun, verbose: bool, coverage: bool) -> None:
    current: tuple[str, str] | None = None
    for result in run.results:
        if (result.file, result.engine) != current:
            current = (result.file, result.engine)
            console.print(f"[bold]{escape(result.file)}[/bold] ({escape(result.suite)}, engine {result.engine})")
        if result.passed:
            if verbose:
                console.print(f"  [green]ok[/green]   {escape(result.case)}")
            continue
        console.print(f"  [red]FAIL[/red] {escape(result.case)}  ({escape(result.file)}:{result.line})")
        for message in result.failures:
            console.print(f"       - {message}", markup=False)
    if coverage:
        for item in run.uncovered:
            if item.file is not None:
                console.print(f"{item.file}:{item.line}: rule `{item.rule}` of pack `{item.pack}` never fired",
                              markup=False)
            else:
                console.print(f"vocabulary check `{item.rule}` never fired", markup=False)
        hit = len(run.coverage) - len(run.uncovered)
        console.print(f"rule coverage: {hit}/{len(run.coverage)} ({run.coverage_percent:.1f}%)")
    passed = len(run.results) - len(run.failed)
    colour = "red" if run.failed else "green"
    console.print(f"[{colour}]{passed} passed, {len(run.failed)} failed[/{colour}] ({len(run.results)} cases)")


def _engines(choice: str) -> list[str]:
    return available_engines() if choice == "all" else [choice]


def _report_load_error(problems: Sequence[object], what: str) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)
    fail(f"{len(problems)} problem(s) in {what}")


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--engine", type=click.Choice(["all", "auto", "celpy", "cel-cpp"]), default="all", show_default=True,
              help="`all` runs every case on every installed engine and fails a case they decide differently")
@format_option("text", "json", "junit")
@click.option("--coverage", is_flag=True, help="report the rules, tier entries and vocabularies no case made fire")
@click.option("--fail-under", type=click.FloatRange(0, 100), default=None, metavar="PCT",
              help="exit 2 when rule coverage is below PCT percent (implies --coverage)")
@click.option("--plugins", "use_plugins", is_flag=True,
              help="also load the CEL functions and checks of installed plugins")
@click.option("-v", "--verbose", is_flag=True, help="list passing cases too")
def test_command(paths: tuple[str, ...], engine: str, output_format: str, coverage: bool, fail_under: float | None,
                 use_plugins: bool, verbose: bool) -> None:
    """Run the policy tests in PATH (files or directories of `*.irgov-test.yaml`; default `policies/`)."""
    coverage = coverage or fail_under is not None
    try:
        files = find_policy_tests(list(paths or ("policies",)))
        if not files:
            fail(f"no policy tests (`*.irgov-test.yaml`) in {', '.join(f'`{p}`' for p in paths or ('policies',))}")
        suites = []
        problems = []
        for path in files:
            try:
                suites.append(load_policy_test(path))
            except PolicyTestLoadError as exc:
                problems.extend(exc.problems)
        if problems:
            _report_load_error(problems, "policy tests")
        run = run_policy_tests(suites, _engines(engine), use_plugins=use_plugins)
    except PolicyTestLoadError as exc:
        _report_load_error(exc.problems, "policy tests")
    except PackLoadError as exc:
        _report_load_error(exc.problems, "rule packs")
    except PolicyError as exc:
        fail(str(exc))
    under = fail_under is not None and run.coverage_percent + 1e-9 < fail_under
    if output_format == "json":
        out = run.to_dict()
        if not coverage:
            out.pop("coverage")
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    elif output_format == "junit":
        click.echo(junit_xml(run), nl=False)
    else:
        _print_pretty(Console(highlight=False, soft_wrap=True), run, verbose, coverage)
        if under:
            click.echo(f"rule coverage {run.coverage_percent:.1f}% is under the required {fail_under:g}%", err=True)
    raise SystemExit(EXIT_TESTS_FAILED if run.failed or under else 0)
