#!/usr/bin/env python3
"""pesc.Executor and joblib's "pesc" backend against pesc.map and joblib's own loky backend, in one run.

    build/venv/bin/python benchmarks/python/executors.py [--calls 2000] [--rounds 3]

Each contender makes `--calls` no-op calls (``abs(i)``) on an embedded farm
with 2 slots (loky: 2 processes) and collects every value; the table shows
calls per second (median over rounds, min..max) and each contender's time as
a ratio to pesc.map measured in the same round. Setup (the embedded farm, the
loky pool) is not measured: each contender warms up once first.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import joblib

import pesc


def contenders(calls: int, slots: int) -> dict[str, Callable[[], list[int]]]:
    executor = pesc.Executor(slots=slots)
    items = list(range(calls))
    return {
        "pesc.map": lambda: pesc.map(abs, items, progress=False, slots=slots),
        "pesc.Executor.map": lambda: list(executor.map(abs, items)),
        "pesc.Executor.submit": lambda: [f.result() for f in [executor.submit(abs, i) for i in items]],
        "joblib pesc": lambda: _joblib("pesc", items, slots=slots),
        "joblib loky": lambda: _joblib("loky", items, n_jobs=slots),
    }


def _joblib(backend: str, items: list[int], **options: int) -> list[int]:
    with joblib.parallel_backend(backend, **options):
        return joblib.Parallel()(joblib.delayed(abs)(i) for i in items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slots", type=int, default=2)
    options = parser.parse_args()
    runs = contenders(options.calls, options.slots)
    expected = list(range(options.calls))
    for run in runs.values():  # warm-up: pools, embedded farms, imports
        run()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    ratios: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(options.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            values = run()
            seconds[name].append(time.perf_counter() - start)
            if values != expected:
                raise SystemExit(f"{name} returned wrong values")
        for name in runs:
            ratios[name].append(seconds[name][-1] / seconds["pesc.map"][-1])
    print(f"{options.calls} no-op calls, {options.slots} slots, {options.rounds} rounds (median, min..max)")
    print(f"{'contender':<22} {'calls/s':>10} {'range':>18} {'time / pesc.map':>16}")
    for name in runs:
        rates = [options.calls / s for s in seconds[name]]
        print(f"{name:<22} {statistics.median(rates):>10.0f} {min(rates):>8.0f}..{max(rates):<8.0f} "
              f"{statistics.median(ratios[name]):>15.2f}x")


if __name__ == "__main__":
    main()
