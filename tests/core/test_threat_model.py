"""docs/security.md's threat model names, for each control, the test that proves it: every test
it names exists, so the table cannot point at a test that was renamed or removed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_the_threat_model_names_exists() -> None:
    page = (ROOT / "docs" / "security.md").read_text("utf-8")
    table = page.split("## Threat model", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "tests/" in line]
    assert len(rows) >= 12
    for row in rows:
        for file, names in re.findall(r"`(tests/[\w/]+\.py)((?:::\w+)?)`", row):
            assert (ROOT / file).is_file(), file
            if names:
                assert f"def {names[2:]}(" in (ROOT / file).read_text("utf-8"), file + names
        for bare in re.findall(r"`(test_\w+)`", row):
            files = re.findall(r"`(tests/[\w/]+\.py)", row)
            assert any(f"def {bare}(" in (ROOT / f).read_text("utf-8") for f in files), bare
