"""Documentation that is generated or mirrors code must not drift from it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_cli_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("_gen_cli", DOCS / "_gen_cli.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    expected = generator.render()
    assert (DOCS / "cli.md").read_text("utf-8") == expected, (
        "docs/cli.md is out of date: run `python docs/_gen_cli.py`")
