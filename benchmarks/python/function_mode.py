#!/usr/bin/env python3
"""pesc function mode (and script mode) against dask.distributed and joblib, in one run.

Run from a checkout, with the venv pesc is installed in:

    build/venv/bin/python benchmarks/python/function_mode.py [--ranks 2000] [--script-ranks 200] [--rounds 3]

Every figure is ranks per second (wall clock from submit to the last result in
hand). Each round measures every contender back to back, so a loaded machine
hits them alike; the table shows the median over rounds (and min..max).

Contenders, all with 2 workers / slots:
  pesc embedded   pesc.Farm(slots=2): coordinator and worker in this process
  pesc loopback   pesc-coordinator + pesc-worker --slots 2 on 127.0.0.1, started
                  and stopped here (temporary directories, removed at exit)
  dask            Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True)),
                  client.map + client.gather
  joblib          Parallel(n_jobs=2, batch_size=1) (loky), one call per element
Script mode: a file containing `pass` run as ranks through pesc, against
`/usr/bin/python3 -c pass` started 2 at a time.

Setup (cluster start, worker registration, loky pool start) is not measured:
each contender runs one small warm-up first. A pesc function-mode job still
pays its warm interpreters' start (they live for one job).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DAEMONS = Path(os.environ.get("PESC_DAEMONS", REPO / "build" / "daemons"))
PYTHON = "/usr/bin/python3"  # the first python3 on PATH may be a slow pyenv shim

# The embedded farm resolves the "python" domain (script mode) on PATH.
os.environ["PATH"] = "/usr/bin:" + os.environ.get("PATH", "")
os.environ.pop("PESC_COORDINATOR", None)


def noop(rank):
    return None


def now() -> float:
    return time.perf_counter()


class Daemons:
    """A pesc-coordinator and one pesc-worker --slots 2 on loopback, in temporary directories."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pesc-bench-"))
        self.procs: list[subprocess.Popen] = []
        self.address = ""

    def start(self) -> str:
        state = self.root / "coordinator"
        work = self.root / "worker"
        state.mkdir()
        work.mkdir()
        log = open(self.root / "daemons.log", "wb")
        self.procs.append(subprocess.Popen(
            [str(DAEMONS / "pesc-coordinator"), "--listen", "127.0.0.1:0", "--state-dir", str(state)],
            stdout=log, stderr=subprocess.STDOUT))
        address_file = state / "coordinator.address"
        deadline = now() + 20
        while not (address_file.exists() and address_file.read_text().strip()):
            if now() > deadline or self.procs[0].poll() is not None:
                raise RuntimeError("pesc-coordinator did not start; see " + str(self.root / "daemons.log"))
            time.sleep(0.02)
        self.address = address_file.read_text().strip()
        # The admin token (written before the address) for the worker and the client.
        os.environ["PESC_TOKEN"] = (state / "admin.token").read_text().strip()
        self.procs.append(subprocess.Popen(
            [str(DAEMONS / "pesc-worker"), "--coordinator", self.address, "--slots", "2",
             "--work-dir", str(work), "--interpreter", f"python={PYTHON}",
             # pesc's own cost: a root worker's user switch and bubblewrap
             # are measured apart (benchmarks/python/rank_start_isolation.py).
             "--no-sandbox", "--run-as=",
             # A dedicated machine: the contenders before it leave the CPU
             # busy, which would pause an owners-first worker for a second.
             "--owners-first=false"],
            stdout=log, stderr=subprocess.STDOUT))
        # A worker that refuses to start (say, a work dir it cannot use)
        # exits at once; without this check the first job would wait forever.
        time.sleep(0.5)
        if self.procs[-1].poll() is not None:
            raise RuntimeError("pesc-worker exited at start; see " + str(self.root / "daemons.log"))
        return self.address

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def pesc_function(farm, ranks: int) -> float:
    t = now()
    values = farm.map(noop, ranks).wait(progress=False).values
    elapsed = now() - t
    assert len(values) == ranks and all(v is None for v in values)
    return ranks / elapsed


def pesc_script(farm, script: Path, ranks: int) -> float:
    t = now()
    res = farm.map(script, ranks).wait(progress=False)
    elapsed = now() - t
    assert res.ok, res.failed[:1]
    return ranks / elapsed


def dask_rate(client, ranks: int) -> float:
    t = now()
    values = client.gather(client.map(noop, range(ranks), pure=False))
    elapsed = now() - t
    assert len(values) == ranks
    return ranks / elapsed


def joblib_rate(parallel, delayed, ranks: int) -> float:
    t = now()
    values = parallel(delayed(noop)(i) for i in range(ranks))
    elapsed = now() - t
    assert len(values) == ranks
    return ranks / elapsed


def bare_python_rate(starts: int, in_flight: int = 2) -> float:
    """`/usr/bin/python3 -c pass` started `starts` times, `in_flight` at a time."""
    t = now()
    running: list[subprocess.Popen] = []
    started = 0
    while started < starts or running:
        while started < starts and len(running) < in_flight:
            running.append(subprocess.Popen([PYTHON, "-c", "pass"]))
            started += 1
        running.pop(0).wait()
    return starts / (now() - t)


def summary(samples: list[float]) -> str:
    med = statistics.median(samples)
    if len(samples) == 1:
        return f"{med:,.0f}"
    return f"{med:,.0f} ({min(samples):,.0f}..{max(samples):,.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", type=int, default=2000, help="function-mode ranks per job")
    ap.add_argument("--script-ranks", type=int, default=200, help="script-mode ranks per job")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import pesc
    import dask
    import distributed
    import joblib
    from distributed import Client, LocalCluster

    print(f"python {sys.version.split()[0]}, dask {dask.__version__}, distributed {distributed.__version__}, "
          f"joblib {joblib.__version__}, pesc {pesc.__version__}")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())

    daemons = Daemons()
    tmp = Path(tempfile.mkdtemp(prefix="pesc-bench-script-"))
    cluster = client = None
    try:
        script = tmp / "pass.py"
        script.write_text("pass\n")

        address = daemons.start()
        embedded = pesc.Farm(slots=2)
        loopback = pesc.Farm(coordinator=address)
        print(f"pesc embedded: {embedded.describe()}; loopback: {address}")

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               local_directory=str(tmp / "dask"))
        client = Client(cluster)
        parallel = joblib.Parallel(n_jobs=2, batch_size=1)
        parallel.__enter__()  # keep the loky pool for every call (joblib reuses it anyway)

        # Warm-ups: worker registration, process caches, pools.
        t = now()
        pesc_function(embedded, 4)
        pesc_function(loopback, 4)
        pesc_script(embedded, script, 2)
        pesc_script(loopback, script, 2)
        dask_rate(client, 20)
        joblib_rate(parallel, joblib.delayed, 20)
        print(f"warm-ups done in {now() - t:.1f} s")

        fn = {k: [] for k in ("pesc embedded", "pesc loopback", "dask", "joblib")}
        sc = {k: [] for k in ("pesc embedded", "pesc loopback", "bare python3 -c pass")}
        for rnd in range(args.rounds):
            fn["pesc embedded"].append(pesc_function(embedded, args.ranks))
            fn["pesc loopback"].append(pesc_function(loopback, args.ranks))
            fn["dask"].append(dask_rate(client, args.ranks))
            fn["joblib"].append(joblib_rate(parallel, joblib.delayed, args.ranks))
            sc["bare python3 -c pass"].append(bare_python_rate(args.script_ranks))
            sc["pesc embedded"].append(pesc_script(embedded, script, args.script_ranks))
            sc["pesc loopback"].append(pesc_script(loopback, script, args.script_ranks))
            print(f"round {rnd + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in {**fn, **{
                "script " + k: v for k, v in sc.items()}}.items()), flush=True)
        parallel.__exit__(None, None, None)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        daemons.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in fn.items()}
    print()
    print(f"Function mode: {args.ranks} ranks of a no-op function, 2 workers, median of {args.rounds} rounds "
          "(min..max), ranks/s")
    print()
    print("| contender | ranks/s | pesc embedded / it | pesc loopback / it |")
    print("|---|---|---|---|")
    for k, v in fn.items():
        print(f"| {k} | {summary(v)} | {med['pesc embedded'] / med[k]:.2f} | {med['pesc loopback'] / med[k]:.2f} |")
    smed = {k: statistics.median(v) for k, v in sc.items()}
    bare = smed["bare python3 -c pass"]
    print()
    print(f"Script mode: {args.script_ranks} ranks of a `pass` script, 2 slots, ranks/s")
    print()
    print("| contender | ranks/s | / bare start rate |")
    print("|---|---|---|")
    for k, v in sc.items():
        print(f"| {k} | {summary(v)} | {smed[k] / bare:.2f} |")
    print()
    print("Targets (issue 3): pesc loopback >= 10x dask: "
          f"{med['pesc loopback'] / med['dask']:.1f}x; >= joblib batch_size=1: "
          f"{med['pesc loopback'] / med['joblib']:.2f}x")


if __name__ == "__main__":
    main()
