#!/usr/bin/env python3
"""What rerunning only the failed ranks saves, and how soon `logs -f` shows a line, in one run.

    build/venv/bin/python benchmarks/python/retry_logs.py [--ranks 1000] [--failed 2]

A shell job of `--ranks` ranks on an embedded farm with 2 slots, `--failed`
of which fail until a marker file exists: the time of the whole job, then of
``Results.retry_failed()`` once the marker exists, as a ratio to it. Then one
rank prints its clock ten times, 0.3 s apart, while ``Job.logs`` follows it:
the delay from each line's print to its arrival (median and max).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pesc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ranks", type=int, default=1000)
    parser.add_argument("--failed", type=int, default=2)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        marker = directory / "fixed"
        failing = " ".join(str(r * options.ranks // options.failed + 1) for r in range(options.failed))
        flaky = directory / "flaky.sh"
        flaky.write_text(f'echo "rank $PESC_RANK"\nfor r in {failing}; do\n'
                         f'  [ "$PESC_RANK" = "$r" ] && [ ! -e {marker} ] && exit 3\ndone\nexit 0\n')
        farm = pesc.Farm("shell", slots=2)
        started = time.monotonic()
        first = farm.map(flaky, options.ranks).wait(progress=False)
        whole = time.monotonic() - started
        marker.touch()
        started = time.monotonic()
        again = first.retry_failed(progress=False)
        retry = time.monotonic() - started
        assert again.ok and len(first.failed) == options.failed
        print(f"{options.ranks}-rank job: {whole:.2f} s; retry of its {options.failed} failed ranks: "
              f"{retry:.3f} s ({retry / whole:.3f} of the whole)")

        ticker = directory / "ticker.sh"
        ticker.write_text("for i in 1 2 3 4 5 6 7 8 9 10; do date +%s.%N; sleep 0.3; done\n")
        job = farm.map(ticker, 1)
        delays = sorted(time.time() - float(line) for chunk in job.logs(0) for line in chunk.split())
        job.wait(progress=False)
        print(f"logs -f: {len(delays)} lines, delay median {delays[len(delays) // 2] * 1000:.0f} ms, "
              f"max {delays[-1] * 1000:.0f} ms (a follower asks every 250 ms)")


if __name__ == "__main__":
    main()
