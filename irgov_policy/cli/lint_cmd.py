"""`irgov lint`: check rule packs without running them.

Prints `file:line:col: message` for errors and `file:line:col: warning: message` for warnings;
exit 1 when there is any error (warnings alone exit 0).
"""

from __future__ import annotations

import json

import click

from ..errors import PolicyError
from ..policy.lint import WARNING, lint_paths
from ..policy.plugin_hooks import collect_cel_functions
from ._common import fail

__all__ = ["lint_command"]


@click.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--engine", "engines", multiple=True, type=click.Choice(["celpy", "cel-cpp"]),
              help="compile with this CEL engine (repeatable); default: every available engine")
@click.option("--plugins/--no-plugins", "use_plugins", default=True, show_default=True,
              help="make the CEL functions of installed plugins known")
@click.option("--baseline-vocabulary/--no-baseline-vocabulary", default=True, show_default=True,
              help="count the shipped baseline's actions as known when checking that rules can fire")
def lint_command(paths: tuple[str, ...], output_format: str, engines: tuple[str, ...], use_plugins: bool,
                 baseline_vocabulary: bool) -> None:
    """Lint rule packs (files or directories of `*.irgov.yaml`): schema, CEL and semantic checks."""
    try:
        functions = collect_cel_functions() if use_plugins else {}
        report = lint_paths(paths, engines=engines or None, functions=functions,
                            baseline_vocabulary=baseline_vocabulary)
    except PolicyError as exc:
        fail(str(exc))
    if output_format == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        for problem in report.problems:
            label = "warning: " if problem.severity == WARNING else ""
            click.echo(f"{problem.file}:{problem.line}:{problem.column}: {label}{problem.message}")
        summary = (f"{len(report.files)} pack(s), {len(report.errors)} error(s), "
                   f"{len(report.warnings)} warning(s)")
        click.echo(summary, err=True)
    raise SystemExit(1 if report.errors else 0)
