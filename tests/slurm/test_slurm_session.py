#!/usr/bin/env python3
"""A notebook's session on a real single-node Slurm: pesc.Farm(pool=...) (issue 17, "From a session").

Root only; exits 77 (skipped) otherwise or without Slurm. Needs the build's
pesc-worker and Python extension: PESC_BUILD (default: build/). A Python
session runs 50 ranks through pilots it submits itself; its listen side
refuses a client without the session's token; a session whose pool cannot
submit fails the job's wait with sbatch's words; closing a session leaves
nothing in squeue and no pilot running. With the R package installed in
PESC_BUILD/r-library, an R session does the same 50 ranks. Prints the time
from Farm(pool=...) to the first rank running and from close to an empty
squeue.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_slurm_pool as cluster_test  # noqa: E402  (its single-node Slurm)

ROOT = cluster_test.ROOT
BUILD = cluster_test.BUILD
WORKER = os.path.join(BUILD, "daemons", "pesc-worker")
CLI = os.path.join(BUILD, "daemons", "pesc")
SKIP = cluster_test.SKIP
RANKS = 50

# The session, as a notebook would run it. argv: rank script, state dir,
# partition, ranks. It prints what the test checks, one "KEY value" a line.
SESSION = r'''
import os, subprocess, sys, time
import pesc
rank_script, state_dir, partition, ranks = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
started = time.time()
print("STARTED", started, flush=True)
pool = {"batch_system": "slurm", "partition": partition, "time_limit": "10m", "max_workers": 4,
        "slots_per_worker": 4, "idle_timeout": "30s", "worker": os.environ["PESC_WORKER_BIN"],
        # Pilots run as root here: ranks as the pilot's user, not a sandbox user.
        "worker_args": ["--run-as="]}
with pesc.Farm(pool=pool, state_dir=state_dir) as farm:
    print("DESCRIBE", farm.describe(), flush=True)
    job = farm.map(rank_script, ranks)
    try:
        results = job.wait(progress=False)
    except pesc.PescError as error:
        print("WAIT-RAISED", type(error).__name__, str(error).replace("\n", " "), flush=True)
    else:
        print("FAILED-RANKS", len(results.failed), flush=True)
        for line in results.output.splitlines():
            print("RANK-LINE", line, flush=True)
        # The listen side while the session runs: the test asks it now.
        print("ASK-TOKEN", flush=True)
        sys.stdin.readline()
    print("CLOSING", time.time(), flush=True)
print("CLOSED", time.time(), flush=True)
'''

R_SESSION = r'''
args <- commandArgs(trailingOnly = TRUE)
library(pesc)
started <- as.numeric(Sys.time())
res <- farm(args[1], repetitions = as.integer(args[3]), progress = FALSE,
            pool = list(batch_system = "slurm", partition = "debug", time_limit = "10m", max_workers = 2,
                        slots_per_worker = 4, idle_timeout = "30s", worker = Sys.getenv("PESC_WORKER_BIN"),
                        worker_args = "--run-as="))
cat("R-STARTED", started, "\n")
cat("R-FAILED", sum(res$ranks$status != "succeeded"), "\n")
cat(paste0("RANK-LINE ", strsplit(res$output, "\n")[[1]], "\n"), sep = "")
cat("CLOSED", as.numeric(Sys.time()), "\n")
'''


def log(*words):
    print("test_slurm_session:", *words, flush=True)


def python_path(tmp):
    """The pesc package from this checkout with the build's extension beside it."""
    extension = glob.glob(os.path.join(BUILD, "bindings", "python", "_core*.so"))
    if not extension:
        raise AssertionError(f"no pesc._core in {BUILD}/bindings/python: build the _core target")
    package = os.path.join(tmp, "python", "pesc")
    shutil.copytree(os.path.join(ROOT, "bindings", "python", "pesc"), package)
    shutil.copy(extension[0], package)
    return os.path.dirname(package)


def rank_script(tmp):
    path = os.path.join(tmp, "rank.sh")
    with open(path, "w") as script:
        script.write('echo "rank $PESC_RANK slurm ${SLURM_JOB_ID:-none} at $(date +%s.%N)"\nsleep 0.2\n')
    os.chmod(path, 0o755)
    return path


def values(lines, key):
    return [line[len(key) + 1:].strip() for line in lines if line.startswith(key + " ")]


def check_ranks(lines, started, what):
    """Every rank once, in order, each inside a Slurm job; logs the time to the first start."""
    ranks = values(lines, "RANK-LINE")
    assert len(ranks) == RANKS, f"{len(ranks)} ranks, not {RANKS}:\n" + "\n".join(lines[-40:])
    first = None
    for number, line in enumerate(ranks):
        found = re.fullmatch(r"rank (\d+) slurm (\S+) at ([\d.]+)", line)
        assert found, f"an unexpected line: {line!r}"
        assert int(found.group(1)) == number, f"line {number} is rank {found.group(1)}: out of order"
        assert found.group(2) != "none", f"rank {number} ran outside Slurm"
        first = min(first or float(found.group(3)), float(found.group(3)))
    log(f"FIGURE {what} to the first rank running: {first - started:.1f} s")


def pilots_gone(cluster, closed_at, what):
    """Nothing in squeue and no pilot process left; the time it took from close."""
    def empty():
        return not cluster.squeue() and not subprocess.run(["pgrep", "-f", "pilot-session-"],
                                                           capture_output=True).stdout
    cluster_test.wait_until("squeue empty and no pilot process after the session closed", empty, 60, every=0.2)
    log(f"FIGURE {what} to an empty squeue and no pilot process: {time.time() - closed_at:.1f} s")


def refuses_without_token(tmp, state_dir, describe):
    """The session's listen side: no token or a wrong one is refused; its own token works."""
    address = re.search(r"at (\S+?),", describe).group(1)
    session_dir = glob.glob(os.path.join(state_dir, "session-*"))[0]
    assert (os.stat(session_dir).st_mode & 0o777) == 0o700, oct(os.stat(session_dir).st_mode)
    empty_home = os.path.join(tmp, "home")
    os.makedirs(empty_home, exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": empty_home, "PESC_COORDINATOR": address,
           "PESC_TLS_CA": os.path.join(session_dir, "tls", "ca.pem")}

    def jobs(**extra):
        return subprocess.run([CLI, "jobs"], env={**env, **extra}, capture_output=True, text=True)
    for extra in ({}, {"PESC_TOKEN": "not-the-session-token"}):
        refused = jobs(**extra)
        assert refused.returncode != 0, f"a client with {extra or 'no token'} was served:\n{refused.stdout}"
        log(f"refused with {extra or 'no token'}: {refused.stderr.strip().splitlines()[-1]}")
    token = open(os.path.join(session_dir, "coordinator", "admin.token")).read().strip()
    served = jobs(PESC_TOKEN=token)
    assert served.returncode == 0, f"the session's own token was refused:\n{served.stderr}"


def run_session(cluster, env, tmp, partition, with_token_check=False):
    state_dir = os.path.join(tmp, f"sessions-{partition}")
    child = subprocess.Popen([sys.executable, "-c", SESSION, rank_script(tmp), state_dir, partition, str(RANKS)],
                             env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    lines = []
    try:
        for line in child.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("ASK-TOKEN"):
                if with_token_check:
                    refuses_without_token(tmp, state_dir, values(lines, "DESCRIBE")[0])
                child.stdin.write("\n")
                child.stdin.flush()
        assert child.wait(120) == 0, "the session failed:\n" + "\n".join(lines[-60:])
    except BaseException:
        child.kill()
        print("\n".join(lines[-80:]))
        raise
    assert not os.listdir(state_dir), f"the session left {os.listdir(state_dir)} in {state_dir}"
    return lines


def python_session(cluster, env, tmp):
    lines = run_session(cluster, env, tmp, "debug", with_token_check=True)
    log("describe:", values(lines, "DESCRIBE")[0])
    assert values(lines, "FAILED-RANKS") == ["0"], "\n".join(lines[-40:])
    check_ranks(lines, float(values(lines, "STARTED")[0]), "Python: pesc.Farm(pool=...) + map")
    pilots_gone(cluster, float(values(lines, "CLOSING")[0]), "Python: the with block's close")


def paused_session(cluster, env, tmp):
    """sbatch refuses the partition: wait() raises with its words instead of hanging."""
    started = time.time()
    lines = run_session(cluster, env, tmp, "nosuch")
    raised = values(lines, "WAIT-RAISED")
    assert raised, "wait() returned for a pool that cannot submit:\n" + "\n".join(lines[-40:])
    log(f"wait() raised after {time.time() - started:.0f} s:", raised[0])
    assert raised[0].startswith("JobFailed") and "invalid partition" in raised[0].lower(), raised[0]
    pilots_gone(cluster, float(values(lines, "CLOSING")[0]), "the paused session's close")


def r_session(cluster, env, tmp):
    library = os.path.join(BUILD, "r-library")
    if not os.path.isdir(os.path.join(library, "pesc")) or not shutil.which("Rscript"):
        log(f"R session: skipped (no pesc R package in {library}; tests/r/run.sh installs it)")
        return
    started = time.time()
    done = subprocess.run(["Rscript", "-e", R_SESSION, rank_script(tmp), "unused", str(RANKS)],
                          env={**env, "R_LIBS": library}, capture_output=True, text=True, timeout=300)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, f"the R session failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert values(lines, "R-FAILED") == ["0"], done.stdout[-2000:]
    check_ranks(lines, started, "R: Rscript's start + farm(pool=...)")
    pilots_gone(cluster, float(values(lines, "CLOSED")[0]), "R: farm() returning (its session closed)")


def main():
    if os.geteuid() != 0:
        log("skipped: needs root (slurmd starts jobs as any user)")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="pesc-slurm-session-")
    os.chmod(tmp, 0o755)
    cluster = cluster_test.Farm(tmp)
    try:
        cluster.start_slurm()
        env = {**cluster.env, "PYTHONPATH": python_path(tmp), "PESC_WORKER_BIN": WORKER}
        for name in ("PESC_COORDINATOR", "PESC_TOKEN", "PESC_TOKEN_FILE", "PESC_TLS_CA"):
            env.pop(name, None)
        began = time.monotonic()
        python_session(cluster, env, tmp)
        log(f"Python session: passed ({time.monotonic() - began:.0f} s)")
        paused_session(cluster, env, tmp)
        log(f"paused pool: passed ({time.monotonic() - began:.0f} s)")
        r_session(cluster, env, tmp)
        log(f"done ({time.monotonic() - began:.0f} s)")
    finally:
        cluster.stop()
        if not os.environ.get("PESC_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
