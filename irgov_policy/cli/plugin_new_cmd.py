"""`irgov plugin new NAME`: a ready provider plugin package, from the templates shipped as package
data (`irgov_policy/templates/plugin/`), with a working example for every hook, its policy tests
and a pytest suite that uses `irgov_policy.testing`."""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import click

from .._version import __version__
from ._common import fail

__all__ = ["plugin_group", "render_plugin"]

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
_SUFFIX = ".tmpl"


def _names(distribution: str) -> dict[str, str]:
    """`irgov-acme-cloud` -> package `irgov_acme_cloud`, plugin (entry point) `acme_cloud`, URL
    scheme `acme-cloud`, CEL function `acmeCloudRegion`, violation code prefix `ACME_CLOUD`."""
    stem = re.sub(r"^irgov[-_]", "", distribution)
    plugin = stem.replace("-", "_")
    words = plugin.split("_")
    return {
        "distribution": distribution,
        "package": distribution.replace("-", "_"),
        "plugin": plugin,
        "scheme": plugin.replace("_", "-"),
        "function": words[0] + "".join(w.capitalize() for w in words[1:]) + "Region",
        "CODE": plugin.upper(),
        "irgov_version": __version__,
    }


def _render(text: str, names: dict[str, str]) -> str:
    for key, value in names.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _walk(folder: Traversable, relative: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Traversable]]:
    found: list[tuple[tuple[str, ...], Traversable]] = []
    for item in sorted(folder.iterdir(), key=lambda i: i.name):
        if item.is_dir():
            if item.name != "__pycache__":
                found += _walk(item, (*relative, item.name))
        elif item.name.endswith(_SUFFIX):
            found.append(((*relative, item.name[: -len(_SUFFIX)]), item))
    return found


def render_plugin(distribution: str, parent: Path) -> Path:
    """Write the package `parent/distribution` and return its folder. Raises `click.ClickException`
    subclasses (one-line errors) for a name that cannot be a plugin or a folder that exists."""
    if not _NAME.fullmatch(distribution) or distribution in ("irgov", "irgov-policy", "irgov_policy"):
        fail(f"plugin name `{distribution}` must be lower case letters, digits and single `-` or `_`, "
             "starting with a letter, such as `irgov-acme`")
    names = _names(distribution)
    if len(names["scheme"]) > 24:
        fail(f"plugin name `{distribution}` is too long: its hash backend `{names['scheme']}-sha3` must fit 32 characters")
    target = parent / distribution
    if target.exists():
        fail(f"`{target}` already exists")
    templates = resources.files("irgov_policy").joinpath("templates", "plugin")
    files = _walk(templates)
    for parts, template in files:
        renamed = [names["package"] if p == "__package__" else p.replace("__plugin__", names["plugin"]) for p in parts]
        path = target.joinpath(*renamed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_render(template.read_text("utf-8"), names), "utf-8")
    return target


@click.group("plugin")
def plugin_group() -> None:
    """Write provider plugins (`irgov plugins` lists the installed ones)."""


@plugin_group.command("new")
@click.argument("name")
@click.option("--directory", "-d", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="where to create the NAME folder")
def new_command(name: str, directory: Path) -> None:
    """Write a ready plugin package NAME (e.g. `irgov-acme`): pyproject.toml with the entry point,
    a module per hook with a working example, a rule pack with policy tests, and pytest tests.

    Then: `pip install -e NAME`, `irgov plugins -v`, and `pytest` in the NAME folder."""
    target = render_plugin(name, directory)
    names = _names(name)
    click.echo(f"wrote plugin `{names['plugin']}` (package `{names['package']}`) in {target}")
    click.echo(f"next: pip install -e '{target}[test]' && irgov plugins -v && (cd {target} && pytest)")
