"""Timing shared by the benchmarks: medians of batches, so one slow batch on a busy machine
does not move the figure."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["interleaved_seconds", "median_seconds"]


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds per call over `repeat` timed batches (each batch sized to about 20 ms)."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    loops = max(1, int(0.02 / once))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - t0) / loops)
    return statistics.median(samples)


def interleaved_seconds(fns: list[Callable[[], Any]], repeat: int) -> tuple[list[float], list[float]]:
    """Seconds per call of each function and each one's ratio to the first, measured in rounds
    that run one batch of every function in turn: a load that comes and goes hits all of them
    alike, so the median of the per-round ratios stays steady on a busy machine.

    Returns (median seconds per function, median ratio to `fns[0]` per function)."""
    loops = []
    for fn in fns:
        start = time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-7)
        loops.append(max(1, int(0.01 / once)))
    seconds: list[list[float]] = [[] for _ in fns]
    ratios: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        spent = []
        for fn, count in zip(fns, loops, strict=True):
            t0 = time.perf_counter()
            for _ in range(count):
                fn()
            spent.append((time.perf_counter() - t0) / count)
        for i, value in enumerate(spent):
            seconds[i].append(value)
            ratios[i].append(value / spent[0])
    return [statistics.median(s) for s in seconds], [statistics.median(r) for r in ratios]
