"""Write `docs/cli.md` from the `--help` of every `irgov` command, so the reference cannot drift.

    python docs/_gen_cli.py          # rewrite docs/cli.md
    python docs/_gen_cli.py --check  # exit 1 when docs/cli.md is out of date
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from irgov_policy.cli import main

TARGET = Path(__file__).with_name("cli.md")
WIDTH = 100

INTRO = """\
# CLI reference

`irgov` is installed with the package. Every command prints one-line errors
(`irgov: error: ...`), usage errors included, and never a traceback. An input file or standard
input is read up to 8 MiB and refused beyond (so `irgov check /dev/zero` ends at once). Exit codes:

| code | meaning |
|---|---|
| 0 | success (`check`: PASS; `diff`: the DAG matches the IR) |
| 1 | usage, input or I/O error (`diff`: the DAG does not match) |
| 2 | failing policy tests (`test`); a schema not at this version's (`db status`) |
| 3 | `check`: ESCALATE (a human must approve) |
| 4 | `check`: REJECT |

Plugins are loaded for every command: `IRGOV_PLUGINS` (allow-list) and `IRGOV_PLUGINS_BLOCK`
(block-list) choose which; see `docs/plugins.md`. Configuration (`--config FILE` where offered,
and `IRGOV_*` variables) is described in `docs/getting-started.md`.

This page is generated from the commands' own help by `python docs/_gen_cli.py`; do not edit it
by hand.
"""


def _commands(group: click.Group, ctx: click.Context, prefix: str) -> Iterator[tuple[str, click.Command,
                                                                                   click.Context]]:
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        path = f"{prefix} {name}"
        sub = click.Context(command, info_name=name, parent=ctx, max_content_width=WIDTH, terminal_width=WIDTH,
                            **command.context_settings)
        yield path, command, sub
        if isinstance(command, click.Group):
            yield from _commands(command, sub, path)


def render() -> str:
    root = click.Context(main, info_name="irgov", max_content_width=WIDTH, terminal_width=WIDTH,
                         **main.context_settings)
    parts = [INTRO, "## irgov\n", "```text\n" + main.get_help(root) + "\n```\n"]
    for path, command, ctx in _commands(main, root, "irgov"):
        level = "###" if path.count(" ") > 1 else "##"
        parts.append(f"{level} {path}\n")
        parts.append("```text\n" + command.get_help(ctx) + "\n```\n")
    return "\n".join(parts)


def run(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text("utf-8") != text:
            print(f"{TARGET} is out of date: run `python docs/_gen_cli.py`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
