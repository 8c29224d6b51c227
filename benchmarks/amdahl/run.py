#!/usr/bin/env python3
"""The Amdahl suite: how much faster pesc makes five workloads at 1 to 16 slots, next to GNU parallel and Dask.

Run from a checkout, with the venv pesc is installed in (scripts/test.sh makes it):

    build/venv/bin/python benchmarks/amdahl/run.py            # 8 to 11 minutes on a shared 2-core VM
    build/venv/bin/python benchmarks/amdahl/run.py --quick    # small sizes, a smoke test
    build/venv/bin/python benchmarks/amdahl/run.py --render   # table and plot again from the saved CSV

It writes benchmarks/amdahl/results/ (or --out): amdahl.csv (every run),
run.json (load, Dask start-up, sequential CPU times), amdahl.md (a table per
workload), speedup.png (speedup against slots, with the ideal line and the
Amdahl fit), and from pesc's own reports the quantum walk driver's report and
timeline (quantum_walk_report.txt, quantum_walk_timeline.svg) and a stand-in
job's timeline (knn_stand_in_4_slots_timeline.svg).

Every workload is split into 16 ranks; its sequential time is one process
running all of it (rank 0 of world size 1). Two kinds of figures:

  cpu       the ranks compute, at 1 and 2 slots: this machine has 2 cores, so
            these are the only honest CPU figures it can give.
  stand-in  at 2, 4, 8 and 16 slots every rank sleeps for the CPU time it
            used when it computed (pesc's 1-slot run, rank by rank), and the
            speedup is against the sequential run's CPU time: what a
            dedicated CPU per slot would take. A sleeping rank holds a slot
            exactly as a rank on a remote CPU would, so these figures show
            what the farm costs and what the split itself costs (start-up
            and imports paid once per rank), not memory or cache effects.
            CPU time rather than wall time, because this machine is shared
            and a rank's wall time there measures the other users' load.

Each tool runs the same rank commands: pesc (embedded farm, pesc.Farm(slots=S)),
GNU parallel (-j S), and Dask (LocalCluster of S single-threaded worker
processes, one task per rank that runs the command with subprocess). Cluster
and farm start-up are not timed; GNU parallel's own start is, since it is
part of every invocation. Within each slot count the three tools run back to
back, so a loaded machine hits them alike.

Fits use the speedup over the same 16 ranks run one after another (column
"x 1 slot"), so they describe how the split program scales; its gap to the
speedup over the sequential program is what the split costs. Amdahl's law
S(p) = 1 / (f + (1 - f) / p) gives the serial fraction f (least squares on
1/S - 1/p = f (1 - 1/p) over the stand-in points), and the Karp-Flatt metric
e(p) = (1/S - 1/p) / (1 - 1/p) is shown per slot count; an e that grows with
p means overhead that grows with p, not a fixed serial part.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"  # the first python3 on PATH may be a slow pyenv shim
RANKS = 16
LOAD_AT_START = os.getloadavg()[0]
SLOTS = (1, 2, 4, 8, 16)
CPU_SLOTS = (1, 2)

# The embedded farm resolves the python and R domains on PATH.
os.environ["PATH"] = "/usr/bin:" + os.environ.get("PATH", "")
os.environ.pop("PESC_COORDINATOR", None)
# One rank is one core's work: no hidden BLAS threads.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = "1"

import pesc  # noqa: E402  (after PATH is set)


@dataclass
class Workload:
    name: str
    title: str
    process: Path
    domain: str
    interpreter: list[str]
    params: list[str]
    sequential_s: float = 0.0
    sequential_cpu_s: float = 0.0
    one_slot_wall_s: float = 0.0  # pesc's 1-slot cpu run
    rank_seconds: list[float] = field(default_factory=list)  # CPU time per rank, from pesc's 1-slot cpu run

    def argv(self, rank: int, world_size: int, output_dir: Path) -> list[str]:
        """A rank's command line as the farm runs it (the PESC flags), for the tools without a farm."""
        return [*self.interpreter, str(self.process), "--rank", str(rank), "--world_size", str(world_size),
                "--output_dir", str(output_dir), "--parameters", *self.params]


def workloads(build: Path, quick: bool) -> list[Workload]:
    size = (lambda small, full: small) if quick else (lambda small, full: full)
    return [
        Workload("gaussian", "Gaussian generator (Box-Muller on the paper's LCG)",
                 REPO / "examples/gaussian/gaussian.py",
                 "python", [PYTHON], [str(size(200_000, 3_000_000))]),
        Workload("knn", "kNN sweep over k = 1..16, scikit-learn digits", HERE / "workloads/knn_digits.py", "python",
                 [PYTHON], ["16", str(size(2, 3))]),
        Workload("trapezoid", "Trapezoid rule for sin(x)^2 on [-1, 1]", REPO / "examples/trapezoid/trapezoid.py",
                 "python", [PYTHON], [str(size(500_000, 10_000_000))]),
        Workload("quantum_walk", "Lackadaisical quantum walk search, 16 self-loop weights (C++)",
                 build / "benchmarks/amdahl/quantum_walk", "native", [], [str(size(9, 13)), str(size(100, 700)), "16"]),
        Workload("bootstrap", "Bootstrap of a regression coefficient with R's boot", HERE / "workloads/bootstrap.R",
                 "R", ["/usr/bin/Rscript"], [str(size(400, 3000))]),
    ]


def now() -> float:
    return time.perf_counter()


class Scratch:
    """A directory per run for the ranks' output_dirs, emptied after each run."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pesc-amdahl-"))

    def fresh(self) -> Path:
        path = Path(tempfile.mkdtemp(dir=self.root))
        return path

    def clear(self) -> None:
        for child in self.root.iterdir():
            shutil.rmtree(child, ignore_errors=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# --- the tools

def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_sequential(workload: Workload, scratch: Scratch) -> tuple[float, float]:
    """Wall and CPU seconds of the whole workload in one process."""
    start, cpu = now(), children_cpu()
    subprocess.run(workload.argv(0, 1, scratch.fresh()), check=True, stdout=subprocess.DEVNULL)
    return now() - start, children_cpu() - cpu


def run_pesc(farm: pesc.Farm, process: Path, params: list[str]) -> tuple[float, pesc.Results]:
    start = now()
    results = farm.map(process, RANKS, params).wait(progress=False)
    wall = now() - start
    if not results.ok:
        failed = results.failed[0]
        raise RuntimeError(f"pesc: rank {failed.rank} of {process.name} failed:\n{failed.output}")
    return wall, results


def run_parallel(commands: list[list[str]], slots: int) -> float:
    lines = "".join(shlex.join(command) + "\n" for command in commands)
    start = now()
    subprocess.run(["parallel", "--will-cite", "-j", str(slots), "--halt", "now,fail=1"], input=lines, text=True,
                   check=True, stdout=subprocess.DEVNULL)
    return now() - start


def run_command(command: list[str]) -> int:
    """A Dask task: one rank's command."""
    return subprocess.run(command, check=True, stdout=subprocess.DEVNULL).returncode


def run_dask(client, commands: list[list[str]]) -> float:
    start = now()
    client.gather(client.map(run_command, commands, pure=False))
    return now() - start


def sleep_commands(seconds: list[float]) -> list[list[str]]:
    return [["sh", "-c", f"exec sleep {s:.3f}"] for s in seconds]


# --- figures

def amdahl_fraction(points: list[tuple[int, float]]) -> float | None:
    """Least-squares f in 1/S - 1/p = f (1 - 1/p) over the points with p > 1."""
    xs = [(1 - 1 / p, 1 / s - 1 / p) for p, s in points if p > 1 and s > 0]
    if not xs:
        return None
    return sum(x * y for x, y in xs) / sum(x * x for x, _ in xs)


def karp_flatt(p: int, speedup: float) -> float | None:
    return (1 / speedup - 1 / p) / (1 - 1 / p) if p > 1 and speedup > 0 else None


@dataclass
class Row:
    workload: str
    mode: str  # "cpu" or "stand-in"
    tool: str
    slots: int
    wall_s: float
    sequential_s: float  # cpu rows: the sequential run's wall time; stand-in rows: its CPU time
    one_slot_s: float  # the 16 ranks one after another: stand-in, their CPU times; cpu, pesc's 1-slot wall
    report_lost_per_rank_ms: float | None = None  # pesc's own report: slot-time lost per rank

    @property
    def speedup(self) -> float:
        """Over the sequential program: what the user gains."""
        return self.sequential_s / self.wall_s

    @property
    def scaled_speedup(self) -> float:
        """Over the same 16 ranks run one after another: how the split program scales."""
        return self.one_slot_s / self.wall_s

    @property
    def efficiency(self) -> float:
        return self.speedup / self.slots

    @property
    def karp_flatt(self) -> float | None:
        return karp_flatt(self.slots, self.scaled_speedup)

    @property
    def lost_per_rank_ms(self) -> float | None:
        """Stand-in only: (slots x wall - the ranks' sleeps) / ranks, idle slots included."""
        return 1000 * (self.slots * self.wall_s - self.one_slot_s) / RANKS if self.mode == "stand-in" else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, default=REPO / "build", help="the CMake build (default: build/)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--quick", action="store_true", help="small sizes: checks the suite runs, figures mean little")
    parser.add_argument("--only", nargs="*", help="workload names to run (default: all)")
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--render", action="store_true",
                        help="rewrite amdahl.md and speedup.png from OUT/amdahl.csv and OUT/run.json; run nothing")
    arguments = parser.parse_args()
    if arguments.render:
        return render(arguments.out, arguments.build.resolve())

    from dask.distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # its shutdown chatter under load is not news

    build = arguments.build.resolve()
    chosen = [w for w in workloads(build, arguments.quick) if not arguments.only or w.name in arguments.only]
    for workload in chosen:
        if not workload.process.exists():
            sys.exit(f"amdahl: {workload.process} is missing (build with `ninja -C {build}`)")
    arguments.out.mkdir(parents=True, exist_ok=True)
    scratch = Scratch()
    sleeper = HERE / "workloads/sleep_rank.sh"
    rows: list[Row] = []
    cluster_start: dict[int, float] = {}

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def record(row: Row) -> None:
        rows.append(row)
        log(f"{row.workload:<13} {row.mode:<8} {row.tool:<13} {row.slots:>2} slots  {row.wall_s:8.3f} s  "
            f"speedup {row.speedup:5.2f}")

    try:
        # The sequential runs, and pesc at 1 slot, whose rank times the stand-ins sleep for.
        farm = {w.domain: pesc.Farm(w.domain, slots=1) for w in chosen}
        for f in farm.values():
            f.describe()  # starts the embedded farm now, untimed
        for workload in chosen:
            workload.sequential_s, workload.sequential_cpu_s = run_sequential(workload, scratch)
            log(f"{workload.name:<13} sequential {workload.sequential_s:.3f} s, CPU {workload.sequential_cpu_s:.3f} s")
            wall, results = run_pesc(farm[workload.domain], workload.process, workload.params)
            workload.rank_seconds = [r.cpu_time for r in results]
            workload.one_slot_wall_s = wall
            record(Row(workload.name, "cpu", "pesc", 1, wall, workload.sequential_s, wall,
                       1000 * results.report().overhead_per_rank))
            scratch.clear()
        del farm

        for slots in SLOTS[1:]:
            farm = {w.domain: pesc.Farm(w.domain, slots=slots) for w in chosen}
            stand_in_farm = pesc.Farm("shell", slots=slots)
            for f in [*farm.values(), stand_in_farm]:
                f.describe()  # starts the embedded farm now, untimed
            client = None
            if not arguments.no_dask:
                start = now()
                client = Client(LocalCluster(n_workers=slots, threads_per_worker=1, processes=True,
                                             dashboard_address=None, silence_logs=logging.CRITICAL))
                client.gather(client.map(run_command, [["true"]] * slots, pure=False))  # warm every worker
                cluster_start[slots] = now() - start
            for workload in chosen:
                if slots in CPU_SLOTS:
                    wall, results = run_pesc(farm[workload.domain], workload.process, workload.params)
                    cpu_row = partial(Row, workload.name, "cpu", slots=slots, sequential_s=workload.sequential_s,
                                      one_slot_s=workload.one_slot_wall_s)
                    record(cpu_row(tool="pesc", wall_s=wall,
                                   report_lost_per_rank_ms=1000 * results.report().overhead_per_rank))
                    commands = [workload.argv(r, RANKS, scratch.fresh()) for r in range(RANKS)]
                    record(cpu_row(tool="GNU parallel", wall_s=run_parallel(commands, slots)))
                    if client is not None:
                        commands = [workload.argv(r, RANKS, scratch.fresh()) for r in range(RANKS)]
                        record(cpu_row(tool="Dask", wall_s=run_dask(client, commands)))
                    scratch.clear()
                sleeps = [round(s, 3) for s in workload.rank_seconds]
                stand_in_row = partial(Row, workload.name, "stand-in", slots=slots,
                                       sequential_s=workload.sequential_cpu_s, one_slot_s=sum(sleeps))
                wall, results = run_pesc(stand_in_farm, sleeper, [f"{s:.3f}" for s in sleeps])
                record(stand_in_row(tool="pesc", wall_s=wall,
                                    report_lost_per_rank_ms=1000 * results.report().overhead_per_rank))
                if slots == 4 and workload.name == "knn":
                    (arguments.out / "knn_stand_in_4_slots_timeline.svg").write_text(results.report().timeline_svg())
                # GNU parallel runs each line through a shell already.
                wall = run_parallel([["sleep", f"{s:.3f}"] for s in sleeps], slots)
                record(stand_in_row(tool="GNU parallel", wall_s=wall))
                if client is not None:
                    record(stand_in_row(tool="Dask", wall_s=run_dask(client, sleep_commands(sleeps))))
            if client is not None:
                client.close()
                client.cluster.close()
            del farm, stand_in_farm

        # The quantum walk as its own driver: the C++ program farms out its own ranks.
        walk = next((w for w in chosen if w.name == "quantum_walk"), None)
        if walk is not None:
            dims, steps, count = walk.params
            for slots in CPU_SLOTS:
                command = [str(walk.process), "--slots", str(slots), "--dims", dims, "--steps", steps, "--weights",
                           count, "--svg", str(arguments.out / "quantum_walk_timeline.svg")]
                start = now()
                driver = subprocess.run(command, check=True, capture_output=True, text=True)
                record(Row(walk.name, "cpu", "pesc C++ driver", slots, now() - start, walk.sequential_s,
                           walk.one_slot_wall_s))
            (arguments.out / "quantum_walk_report.txt").write_text(
                "$ " + " ".join([walk.process.name, *command[1:-2], "--svg quantum_walk_timeline.svg"]) + "\n" +
                driver.stdout)
    finally:
        scratch.remove()

    write_csv(arguments.out / "amdahl.csv", rows)
    run = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": arguments.quick,
           "load_at_start": LOAD_AT_START, "load_at_end": os.getloadavg()[0], "cores": os.cpu_count(),
           "dask_cluster_start_s": cluster_start,
           "sequential_cpu_s": {w.name: w.sequential_cpu_s for w in chosen}}
    (arguments.out / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    render(arguments.out, build)
    print((arguments.out / "amdahl.md").read_text())
    return 0


def render(out: Path, build: Path) -> int:
    """amdahl.md and speedup.png from the saved amdahl.csv and run.json."""
    run = json.loads((out / "run.json").read_text())
    rows = []
    with (out / "amdahl.csv").open() as saved:
        for line in csv.DictReader(saved):
            report = line["pesc_report_lost_per_rank_ms"]
            rows.append(Row(line["workload"], line["mode"], line["tool"], int(line["slots"]), float(line["wall_s"]),
                            float(line["sequential_s"]), float(line["one_slot_s"]), float(report) if report else None))
    chosen = [w for w in workloads(build, run["quick"]) if any(r.workload == w.name for r in rows)]
    for workload in chosen:
        workload.sequential_s = next(r.sequential_s for r in rows if r.workload == workload.name and r.mode == "cpu")
        workload.sequential_cpu_s = run["sequential_cpu_s"][workload.name]
    write_markdown(out / "amdahl.md", rows, chosen, run)
    plot(out / "speedup.png", rows, chosen)
    return 0


def write_csv(path: Path, rows: list[Row]) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["workload", "mode", "tool", "slots", "ranks", "wall_s", "sequential_s", "one_slot_s",
                         "speedup", "scaled_speedup", "efficiency", "karp_flatt", "lost_per_rank_ms",
                         "pesc_report_lost_per_rank_ms"])
        for r in rows:
            writer.writerow([r.workload, r.mode, r.tool, r.slots, RANKS, f"{r.wall_s:.4f}", f"{r.sequential_s:.4f}",
                             f"{r.one_slot_s:.4f}", f"{r.speedup:.4f}", f"{r.scaled_speedup:.4f}",
                             f"{r.efficiency:.4f}", _num(r.karp_flatt, "{:.4f}"), _num(r.lost_per_rank_ms, "{:.2f}"),
                             _num(r.report_lost_per_rank_ms, "{:.2f}")])


def _num(value: float | None, form: str) -> str:
    return "" if value is None else form.format(value)


def write_markdown(path: Path, rows: list[Row], chosen: list[Workload], run: dict) -> None:
    tools = ["pesc", "GNU parallel", "Dask"]
    lines = [f"# Amdahl suite, {run['date']}" + (" (--quick)" if run["quick"] else ""), "",
             f"{RANKS} ranks per workload. **cpu** rows compute on this {run['cores']}-core machine; speedup = "
             "the sequential run's wall time / wall time. **stand-in** rows sleep each rank for the CPU time it used "
             "computing (pesc, 1 slot), standing in for one dedicated remote CPU per slot; speedup = the sequential "
             "run's CPU time / wall time. \"x 1 slot\" is the speedup over the same 16 ranks run one after another "
             "(stand-in: their CPU times added up; cpu: pesc at 1 slot), and Karp-Flatt (K-F) and the Amdahl fit use "
             "it, so they describe how the split program scales; the gap between the two speedups is what splitting "
             "into 16 processes costs (each rank starts an interpreter and imports its libraries). \"lost/rank\" is "
             "(slots x wall - the ranks' sleeps) / ranks: what each tool cost a rank, idle slots included. "
             "\"pesc vs X\" is X's wall time over pesc's (above 1: pesc was faster).", "",
             f"Load average (1 min) when the run started and ended: {run['load_at_start']:.1f} and "
             f"{run['load_at_end']:.1f} on {run['cores']} cores: the machine was shared, so wall-clock cpu rows carry "
             "the other users' load; the stand-in rows depend on it far less.", ""]
    if run["dask_cluster_start_s"]:
        lines += ["Dask cluster start-up (not in the figures): " +
                  ", ".join(f"{s} workers {t:.1f} s" for s, t in sorted(run["dask_cluster_start_s"].items(),
                                                                       key=lambda item: int(item[0]))), ""]
    by_key = {(r.workload, r.mode, r.tool, r.slots): r for r in rows}
    for workload in chosen:
        ranks_cpu = next((r.one_slot_s for r in rows if r.workload == workload.name and r.mode == "stand-in"), 0.0)
        lines += [f"## {workload.title}", "",
                  f"`{' '.join([workload.process.name, *workload.params])}`: sequential {workload.sequential_s:.2f} s "
                  f"wall, {workload.sequential_cpu_s:.2f} s CPU; split into {RANKS} ranks the work takes "
                  f"{ranks_cpu:.2f} s of CPU ({ranks_cpu / workload.sequential_cpu_s:.2f}x).", "",
                  "| mode | slots | pesc s | speedup | x 1 slot | K-F | lost/rank ms | GNU parallel s | speedup | "
                  "lost/rank ms | Dask s | speedup | lost/rank ms | pesc vs parallel | pesc vs Dask |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for mode, slot_list in (("cpu", CPU_SLOTS), ("stand-in", SLOTS[1:])):
            for slots in slot_list:
                cells = [mode, str(slots)]
                ours = by_key.get((workload.name, mode, "pesc", slots))
                for tool in tools:
                    r = by_key.get((workload.name, mode, tool, slots))
                    if r is None:
                        cells += ["", ""] + (["", "", ""] if tool == "pesc" else [""])
                        continue
                    cells += [f"{r.wall_s:.2f}", f"{r.speedup:.2f}"]
                    if tool == "pesc":
                        cells += [f"{r.scaled_speedup:.2f}", _num(r.karp_flatt, "{:.3f}")]
                    cells.append(_num(r.lost_per_rank_ms, "{:.0f}"))
                for tool in tools[1:]:
                    r = by_key.get((workload.name, mode, tool, slots))
                    cells.append(f"{r.wall_s / ours.wall_s:.2f}" if r and ours else "")
                lines.append("| " + " | ".join(cells) + " |")
        driver = [r for r in rows if r.workload == workload.name and r.tool == "pesc C++ driver"]
        if driver:
            lines += ["", "The C++ program as its own driver (`quantum_walk --slots S`, start-up of its embedded "
                      "farm included): " + ", ".join(f"{r.slots} slot{'s' if r.slots > 1 else ''} {r.wall_s:.2f} s "
                                                      f"(speedup {r.speedup:.2f})" for r in driver) + "."]
        fits = []
        for tool in tools:
            fraction = amdahl_fraction([(r.slots, r.scaled_speedup) for r in rows if r.workload == workload.name
                                        and r.mode == "stand-in" and r.tool == tool])
            if fraction is not None:
                fits.append(f"{tool} {fraction:.3f}")
        report = [r.report_lost_per_rank_ms for r in rows if r.workload == workload.name and r.tool == "pesc"
                  and r.mode == "stand-in" and r.report_lost_per_rank_ms is not None]
        lines += ["", "Amdahl's serial fraction f, fitted to the stand-in \"x 1 slot\" speedups: " + ", ".join(fits)
                  + "."]
        if report:
            lines += [f"pesc's own report (`res.report().overhead_per_rank`) over the stand-in runs: "
                      f"{min(report):.0f} to {max(report):.0f} ms of slot-time lost per rank."]
        lines.append("")
    path.write_text("\n".join(lines))


def plot(path: Path, rows: list[Row], chosen: list[Workload]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 3
    count = len(chosen)
    figure, axes = plt.subplots((count + columns - 1) // columns, columns, figsize=(13, 4.2 * ((count + 2) // 3)),
                                squeeze=False)
    colours = {"pesc": "#4c78a8", "GNU parallel": "#f58518", "Dask": "#54a24b", "pesc C++ driver": "#4c78a8"}
    for ax, workload in zip(axes.flat, chosen):
        ax.plot(SLOTS, SLOTS, color="#999999", linestyle=":", label="ideal (speedup = slots)")
        for tool in ("pesc", "GNU parallel", "Dask"):
            stand_in = sorted((r.slots, r.speedup) for r in rows
                              if r.workload == workload.name and r.tool == tool and r.mode == "stand-in")
            cpu = sorted((r.slots, r.speedup) for r in rows
                         if r.workload == workload.name and r.tool == tool and r.mode == "cpu")
            if stand_in:
                ax.plot(*zip(*stand_in), marker="o", color=colours[tool], label=f"{tool}, stand-in (sleeping ranks)")
            if cpu:
                ax.plot(*zip(*cpu), marker="s", markersize=8, linestyle="none", markerfacecolor="none",
                        markeredgewidth=2, color=colours[tool], label=f"{tool}, cpu (this machine's 2 cores)")
            fitted = [r for r in rows if r.workload == workload.name and r.tool == tool and r.mode == "stand-in"]
            fraction = amdahl_fraction([(r.slots, r.scaled_speedup) for r in fitted])
            if tool == "pesc" and fraction is not None:
                # Amdahl over the 16 ranks, times what the split itself costs against the sequential run.
                split = fitted[0].sequential_s / fitted[0].one_slot_s
                ps = [1 + i / 10 for i in range(0, 151)]
                ax.plot(ps, [split / (fraction + (1 - fraction) / p) for p in ps], color=colours[tool],
                        linestyle="--", linewidth=0.8, label="Amdahl's law fitted to pesc's stand-in points")
        driver = sorted((r.slots, r.speedup) for r in rows
                        if r.workload == workload.name and r.tool == "pesc C++ driver")
        if driver:
            ax.plot(*zip(*driver), marker="x", markersize=9, linestyle="none", color="black",
                    label="the C++ program as its own driver, cpu")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xticks(SLOTS, [str(s) for s in SLOTS])
        ticks = [2.0 ** e for e in range(-4, 5)]
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_ylim(min([0.5] + [r.speedup / 1.3 for r in rows if r.workload == workload.name]), 20)
        ax.set_xlabel("slots")
        ax.set_ylabel("speedup (cpu: over sequential wall,\nstand-in: over sequential CPU time)", fontsize=8)
        ax.set_title(f"{workload.title}\nsequential {workload.sequential_s:.1f} s wall, "
                     f"{workload.sequential_cpu_s:.1f} s CPU", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    # One legend for all panels, in the spare panel when there is one.
    handles = {}
    for ax in list(axes.flat)[:count]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    spare = list(axes.flat)[count:]
    for ax in spare:
        ax.axis("off")
    if spare:
        spare[0].legend(handles.values(), handles.keys(), loc="center", fontsize=9, frameon=False)
    else:
        figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=3, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=80)


if __name__ == "__main__":
    sys.exit(main())
