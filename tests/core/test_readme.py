"""The README's Python example runs as written and ends in an allowed execution."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _python_example() -> str:
    text = (REPO / "README.md").read_text("utf-8")
    start = text.index("```python", text.index("## Using it from Python")) + len("```python\n")
    return text[start:text.index("```", start)]


def test_readme_python_example_runs(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "IRGOV_EVENTS_FLUSH_TIMEOUT": "1"}
    out = subprocess.run([sys.executable, "-c", _python_example()], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True ()"
