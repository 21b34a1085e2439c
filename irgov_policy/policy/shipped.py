"""Where the packs shipped inside the package live."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["BASELINE_PACK", "baseline_pack_path"]

BASELINE_PACK = "baseline.irgov.yaml"


def baseline_pack_path() -> Path:
    """The baseline pack installed with the package: its one copy (the policy tests in `policies/`
    load this file too)."""
    return Path(str(resources.files("irgov_policy").joinpath("data", BASELINE_PACK)))
