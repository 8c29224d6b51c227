#!/bin/sh
# How fast ranks start: 2000 copies of /bin/true, 2 at a time, in one run:
# GNU parallel, a root worker with its defaults, a --no-sandbox --run-as=
# worker and the embedded `pesc run`, each as ranks/s and as a ratio to a
# bare posix_spawn loop measured right before it, and as CPU time per rank
# against the bare loop's (which load elsewhere moves least). Builds nothing.
#
#   benchmarks/spawn_rate.sh BUILD_DIR [RANKS]
#
# The workers (a root worker with its defaults: bubblewrap and the rank user;
# and one with --no-sandbox --run-as=) need root; as another user they are
# skipped. Build first, e.g.:
#   ninja -C build pesc-coordinator pesc-worker pesc_cli pesc-rank-launcher
set -eu

if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [RANKS]" >&2
  exit 2
fi
build_dir=$1
ranks=${2:-2000}
for binary in pesc-coordinator pesc-worker pesc; do
  if [ ! -x "$build_dir/daemons/$binary" ]; then
    echo "$0: no $build_dir/daemons/$binary; build it first" >&2
    exit 1
  fi
done

exec /usr/bin/python3 - "$build_dir/daemons" "$ranks" <<'EOF'
import os, resource, shutil, subprocess, sys, tempfile, time
from pathlib import Path

daemons, ranks = Path(sys.argv[1]).resolve(), int(sys.argv[2])
SLOTS = 2
scratch = Path(tempfile.mkdtemp(prefix="pesc-spawn-rate-", dir="/var/tmp"))
os.chmod(scratch, 0o755)  # the rank user must reach a worker's work dir below it
env = {k: v for k, v in os.environ.items() if not k.startswith("PESC_")}


def bare_spawn():
    """posix_spawn + waitpid of /bin/true in SLOTS processes at once: what no farm can beat.

    One process each, as a worker's slot threads: a spawning thread waits
    for its child's exec, so one loop would run the execs one at a time."""
    loop = ("import os, sys\n"
            "for _ in range(int(sys.argv[1])):\n"
            "    os.waitpid(os.posix_spawn('/bin/true', ['/bin/true'], {}), 0)\n")
    share = [ranks // SLOTS + (1 if i < ranks % SLOTS else 0) for i in range(SLOTS)]
    started = time.monotonic()
    loops = [subprocess.Popen([sys.executable, "-c", loop, str(n)]) for n in share]
    for process in loops:
        if process.wait() != 0:
            raise RuntimeError("a bare spawn loop failed")
    return time.monotonic() - started


def gnu_parallel():
    if shutil.which("parallel") is None:
        return None
    started = time.monotonic()
    subprocess.run(["parallel", "-j", str(SLOTS), "/bin/true"], input="\n".join(map(str, range(ranks))) + "\n",
                   text=True, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.monotonic() - started


def pesc_run(*flags, count=ranks, extra_env=None):
    """Wall time of `pesc run` of `count` ranks of /bin/true, start to end."""
    started = time.monotonic()
    subprocess.run([str(daemons / "pesc"), "run", "--repetitions", str(count), *flags, "/bin/true"],
                   check=True, stdout=subprocess.DEVNULL, env={**env, **(extra_env or {})})
    return time.monotonic() - started


def stop(processes):
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def with_worker(name, *worker_flags):
    """A fresh coordinator and a SLOTS-slot worker; the timed job follows a small one (registration, caches)."""
    state, work, logs = scratch / f"{name}-state", scratch / f"{name}-work", scratch / f"{name}-logs"
    for d in (state, logs):
        d.mkdir()
    processes = [subprocess.Popen([str(daemons / "pesc-coordinator"), "--listen", "127.0.0.1:0", "--state-dir", state],
                                  stdout=open(logs / "coordinator.log", "wb"), stderr=subprocess.STDOUT, env=env)]
    try:
        address_file = state / "coordinator.address"
        deadline = time.monotonic() + 20
        while not (address_file.exists() and address_file.read_text().strip()):
            if time.monotonic() > deadline:
                raise RuntimeError("the coordinator did not start: " + (logs / "coordinator.log").read_text())
            time.sleep(0.05)
        address = address_file.read_text().strip()
        token = {"PESC_TOKEN": (state / "admin.token").read_text().strip()}
        processes.append(subprocess.Popen(
            [str(daemons / "pesc-worker"), "--coordinator", address, "--slots", str(SLOTS), "--work-dir", work,
             "--owners-first=false", *worker_flags],
            stdout=open(logs / "worker.log", "wb"), stderr=subprocess.STDOUT, env={**env, **token}))
        pesc_run("--coordinator", address, count=2 * SLOTS, extra_env=token)
        return pesc_run("--coordinator", address, extra_env=token)
    finally:
        stop(processes)


def with_cpu(measure):
    """measure()'s wall time, and the CPU time of every process it started
    (daemons, launchers, ranks, clients: all waited for by its end)."""
    def cpu():
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    before = cpu()
    seconds = measure()
    return seconds, cpu() - before


# The machine is shared: each figure is compared with a bare loop run right
# before it, so that a burst of load elsewhere moves both halves alike. CPU
# time per rank is what load elsewhere moves least.
rows = []
try:
    setups = [("GNU parallel -j2", gnu_parallel)]
    if os.geteuid() == 0:
        setups += [("root worker, defaults (sandbox, rank user)", lambda: with_worker("defaults")),
                   ("worker --no-sandbox --run-as=", lambda: with_worker("plain", "--no-sandbox", "--run-as="))]
    else:
        print("(not root: the two workers are skipped)")
    setups.append(("embedded pesc run --slots 2", lambda: pesc_run("--slots", str(SLOTS))))
    for name, measure in setups:
        bare = with_cpu(bare_spawn)
        rows.append((name, with_cpu(measure), bare))
finally:
    shutil.rmtree(scratch, ignore_errors=True)

print()
print(f"spawn rate: {ranks} ranks of /bin/true, {SLOTS} at a time; bare: posix_spawn + wait, {SLOTS} in flight,")
print("measured right before each figure. CPU: of every process the setup started (daemons with their start,")
print("launchers, ranks, client), per rank; cpu ratio: bare's CPU per rank / the setup's")
print("-" * 118)
for name, (seconds, cpu), (bare, bare_cpu) in rows:
    bare_rate = ranks / bare
    if seconds is None:
        print(f"{name:44s}   (not installed)")
        continue
    rate = ranks / seconds
    per_rank, bare_per_rank = 1000 * cpu / ranks, 1000 * bare_cpu / ranks
    print(f"{name:44s} {rate:6.0f}/s {seconds:6.2f} s  bare {bare_rate:5.0f}/s  / bare {rate / bare_rate:5.2f}"
          f"   CPU {per_rank:5.2f} ms/rank, bare {bare_per_rank:5.2f}  cpu ratio {bare_per_rank / per_rank:5.2f}")
