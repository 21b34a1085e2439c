from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies"
BASELINE = REPO / "irgov_policy" / "data" / "baseline.irgov.yaml"


def load_reference() -> ModuleType:
    """`benchmarks/reference_baseline.py` (the benchmarks folder is not a package)."""
    name = "irgov_reference_baseline"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "reference_baseline.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_bench_peers() -> ModuleType:
    """`benchmarks/bench_peers.py`, whose sibling imports (`bench_engine`, `timing`) need the
    benchmarks folder on the path; appended, so it never shadows an installed module."""
    name = "irgov_bench_peers"
    if name not in sys.modules:
        load_reference()
        folder = str(REPO / "benchmarks")
        if folder not in sys.path:
            sys.path.append(folder)
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "bench_peers.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
