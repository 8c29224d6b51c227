#!/usr/bin/env python3
"""Where a function-mode job's time goes, over loopback: CPU per rank in each
process, and the job's timeline.

    build/venv/bin/python benchmarks/python/where_time_goes.py [--ranks 4000] [--rounds 3]

Starts a pesc-coordinator and one pesc-worker --slots 2 on 127.0.0.1 (as
function_mode.py does), then per round runs `ranks` no-op ranks and prints:

  ranks/s         submit to the last result in hand (values not read)
  CPU us/rank     coordinator, worker, the worker's warm runners and this
                  client process, from /proc/PID/stat and process_time()
  boot            submit to the first rank's end: submit, dispatch, the
                  runners' interpreter start
  lag             a result's arrival at the client after its rank ended
                  (median and max over the job)
  tail            the last rank's end to the job's results in hand
  values          unpickling every rank's value on the client

Nothing else should run meanwhile; the figures are for finding the next
cost, not for comparing with peers (function_mode.py does that).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import function_mode  # noqa: E402  (its Daemons)

TICKS = os.sysconf("SC_CLK_TCK")


def noop(rank):
    return None


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


def one_round(farm, coordinator: int, worker: int, ranks: int) -> str:
    before = {"coordinator": cpu_seconds(coordinator), "worker": cpu_seconds(worker), "client": time.process_time()}
    started = time.time()
    job = farm.map(noop, ranks)
    arrived = {}
    runners: dict[int, float] = {}
    for result in job.as_completed():
        arrived[result.rank] = time.time()
        if not runners:  # the runners live for the job: found once they answered
            runners = {pid: cpu_seconds(pid) for pid in children(worker)}
    results = job.wait(progress=False)
    in_hand = time.time()
    used = {name: cpu_seconds(pid) for name, pid in (("coordinator", coordinator), ("worker", worker))}
    used["client"] = time.process_time()
    used_by_runners = sum(cpu_seconds(pid) - at for pid, at in runners.items())
    t = time.time()
    values = results.values
    values_s = time.time() - t
    assert len(values) == ranks

    ends = [r.end.timestamp() for r in results]
    lags = [arrived[rank] - ends[rank] for rank in range(ranks)]
    per_rank = {name: (used[name] - before[name]) / ranks * 1e6 for name in before}
    return (f"{ranks / (in_hand - started):,.0f} ranks/s; CPU us/rank: coordinator {per_rank['coordinator']:.0f}, "
            f"worker {per_rank['worker']:.0f}, runners {used_by_runners / ranks * 1e6:.0f} (after the first answer), "
            f"client {per_rank['client']:.0f}; boot {(min(ends) - started) * 1e3:.0f} ms; "
            f"lag median {statistics.median(lags) * 1e3:.0f} ms, max {max(lags) * 1e3:.0f} ms; "
            f"tail {(in_hand - max(ends)) * 1e3:.0f} ms; values {values_s * 1e3:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import pesc

    daemons = function_mode.Daemons()
    try:
        address = daemons.start()
        farm = pesc.Farm(coordinator=address)
        farm.map(noop, 200).wait(progress=False)  # the worker learns the ranks' pace
        coordinator, worker = (p.pid for p in daemons.procs)
        for round_number in range(args.rounds):
            print(f"round {round_number + 1}: {one_round(farm, coordinator, worker, args.ranks)}", flush=True)
    finally:
        daemons.stop()


if __name__ == "__main__":
    main()
