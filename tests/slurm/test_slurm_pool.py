#!/usr/bin/env python3
"""Pools of pilot workers on a real single-node Slurm (tests/slurm/slurm_cluster.sh).

Root only; exits 77 (skipped) otherwise or without Slurm. Needs the build's
daemons: PESC_BUILD (default: build/). Prints the figures issue 17 asks for:
the time from submit to the first rank on a pilot, pilots per job, and ranks
redone from zero after a walltime.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PESC_BUILD", os.path.join(ROOT, "build"))
DAEMONS = os.path.join(BUILD, "daemons")
CLUSTER = os.path.join(ROOT, "tests", "slurm", "slurm_cluster.sh")
SKIP = 77


def log(*words):
    print("test_slurm_pool:", *words, flush=True)


def wait_until(what, predicate, timeout, every=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s")


class Farm:
    def __init__(self, tmp):
        self.tmp = tmp
        self.slurm_dir = os.path.join(tmp, "slurm")
        self.state = os.path.join(tmp, "state")
        self.coordinator = None
        self.env = dict(os.environ)

    def start_slurm(self):
        status = subprocess.run([CLUSTER, "start", self.slurm_dir]).returncode
        if status == SKIP:
            sys.exit(SKIP)
        assert status == 0, "the single-node Slurm did not start"
        self.env["SLURM_CONF"] = os.path.join(self.slurm_dir, "slurm.conf")

    def start_coordinator(self):
        # Over TLS: the pilots must find the lab's CA by themselves.
        certs = os.path.join(self.tmp, "certs")
        self.pesc("certs", "init", certs, "--host", "127.0.0.1")
        self.env["PESC_TLS_CA"] = os.path.join(certs, "ca.pem")
        self.coordinator_log = open(os.path.join(self.tmp, "coordinator.log"), "w")
        self.coordinator = subprocess.Popen(
            [os.path.join(DAEMONS, "pesc-coordinator"), "--listen", "127.0.0.1:0", "--state-dir", self.state,
             "--worker-lease-ms", "3000", "--tls-cert", os.path.join(certs, "server.pem"), "--tls-key",
             os.path.join(certs, "server.key")],
            # Nothing for the pilots to inherit through sbatch: they get --tls-ca from the pool.
            env={name: value for name, value in self.env.items() if name != "PESC_TLS_CA"}, stdout=self.coordinator_log, stderr=subprocess.STDOUT)
        address_file = os.path.join(self.state, "coordinator.address")
        wait_until("the coordinator's address", lambda: os.path.exists(address_file), 30)
        self.env["PESC_COORDINATOR"] = open(address_file).read().strip()
        self.env["PESC_TOKEN_FILE"] = os.path.join(self.state, "admin.token")

    def pesc(self, *args, check=True):
        done = subprocess.run([os.path.join(DAEMONS, "pesc"), *args], env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise AssertionError(f"pesc {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    def pools(self):
        return self.pesc("pool", "list").stdout

    def squeue(self):
        return subprocess.run(["squeue", "--noheader", "--format=%i %j %T"], env=self.env, capture_output=True,
                              text=True).stdout.strip()

    def stop(self):
        if self.coordinator is not None and self.coordinator.poll() is None:
            self.coordinator.send_signal(signal.SIGTERM)
            try:
                self.coordinator.wait(30)
            except subprocess.TimeoutExpired:
                self.coordinator.kill()
                self.coordinator.wait()
        subprocess.run([CLUSTER, "stop", self.slurm_dir])


def write_script(farm, name, text):
    path = os.path.join(farm.tmp, name)
    with open(path, "w") as script:
        script.write(text)
    os.chmod(path, 0o755)
    return path


def two_hundred_ranks(farm):
    """Every rank once, in order, each inside a Slurm job."""
    farm.pesc("pool", "add", "cluster", "--slurm", "--partition", "debug", "--time-limit", "10m", "--max-workers",
              "4", "--slots-per-worker", "4", "--idle-timeout", "15s", "--worker-arg=--run-as=")
    rank = write_script(farm, "rank.sh", 'echo "rank $PESC_RANK slurm ${SLURM_JOB_ID:-none} at $(date +%s.%N)"\n'
                                         "sleep 0.2\n")
    submitted = time.time()
    run = farm.pesc("run", "--repetitions", "200", "--name", "two-hundred", rank)
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 200, f"{len(lines)} lines of output, not 200:\n{run.stdout[-2000:]}\n{run.stderr}"
    first_start = None
    for number, line in enumerate(lines):
        found = re.fullmatch(r"rank (\d+) slurm (\S+) at ([\d.]+)", line)
        assert found, f"an unexpected line: {line!r}"
        assert int(found.group(1)) == number, f"line {number} is rank {found.group(1)}: out of order"
        assert found.group(2) != "none", f"rank {number} ran outside Slurm"
        started = float(found.group(3))
        first_start = started if first_start is None else min(first_start, started)
    pools = farm.pools()
    submitted_pilots = int(re.search(r"^cluster\s+\S+\s+\S+\s+\d+\s+\d+\s+\d+\s+(\d+)", pools, re.M).group(1))
    log(f"FIGURE submit to first rank on a pilot: {first_start - submitted:.1f} s")
    log(f"FIGURE pilots submitted for the 200-rank job: {submitted_pilots}")
    assert 1 <= submitted_pilots <= 4, pools
    workers = farm.pesc("workers").stdout
    assert "pilot-cluster-" in workers, workers
    farm.pesc("pool", "remove", "cluster")


def walltime_drain(farm):
    """A 1-minute pilot drains; its ranks resume from their checkpoints elsewhere."""
    farm.pesc("pool", "add", "short", "--slurm", "--time-limit", "1m", "--max-workers", "1", "--slots-per-worker",
              "2", "--idle-timeout", "10s", "--worker-arg=--run-as=")
    # 70 one-second steps: more than a 1-minute pilot can run before it drains.
    rank = write_script(farm, "steps.sh", """
count_file="$PESC_CHECKPOINT_DIR/step"
step=0
[ -f "$count_file" ] && step=$(cat "$count_file")
echo "rank $PESC_RANK resumed at $step in ${SLURM_JOB_ID:-none}"
while [ "$step" -lt 70 ]; do
  sleep 1
  step=$((step + 1))
  echo "$step" > "$count_file.new" && mv "$count_file.new" "$count_file"
done
""")
    job = farm.pesc("run", "--detach", "--repetitions", "2", "--checkpoint-interval", "1", "--name", "walltime",
                    rank).stdout.strip().split()[-1]
    drained = wait_until("a pilot draining", lambda: "draining" in farm.pesc("workers").stdout, 120, every=1)
    log("a pilot drains before its walltime")
    waited = farm.pesc("wait", job, check=False)
    assert waited.returncode == 0, f"{waited.stdout}\n{waited.stderr}"
    lines = waited.stdout.strip().splitlines()
    assert len(lines) == 2, waited.stdout
    redone_from_zero = 0
    for number, line in enumerate(lines):
        found = re.fullmatch(r"rank (\d+) resumed at (\d+) in (\S+)", line)
        assert found and int(found.group(1)) == number, f"unexpected: {line!r}"
        assert found.group(3) != "none", f"rank {number} finished outside Slurm"
        redone_from_zero += int(found.group(2)) == 0
        log(f"rank {number} finished in Slurm job {found.group(3)}, resumed at step {found.group(2)}")
    log(f"FIGURE ranks redone from zero after the walltime: {redone_from_zero} of 2")
    assert redone_from_zero == 0, waited.stdout
    assert drained
    farm.pesc("pool", "remove", "short")


def wrong_partition(farm):
    """A pool whose submits are refused pauses itself and says why."""
    farm.pesc("pool", "add", "bad", "--slurm", "--partition", "nosuch", "--max-workers", "2")
    rank = write_script(farm, "quick.sh", "echo hi\n")
    job = farm.pesc("run", "--detach", "--repetitions", "2", "--name", "stuck", rank).stdout.strip().split()[-1]
    pools = wait_until("the pool pausing", lambda: (lambda text: "paused" in text and text)(farm.pools()), 90)
    log("pool list says:\n" + pools)
    assert "invalid partition" in pools.lower(), pools
    status = farm.pesc("status", job).stdout
    log("the job's status says:\n" + status)
    assert "pool bad is paused" in status, status
    workers = farm.pesc("workers").stdout
    assert "pool bad is paused" in workers, workers
    farm.pesc("cancel", job)
    farm.pesc("pool", "remove", "bad")


def stop_on_sigterm(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


def main():
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    if os.geteuid() != 0:
        log("skipped: needs root (slurmd starts jobs as any user)")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="pesc-slurm-")
    os.chmod(tmp, 0o755)
    farm = Farm(tmp)
    try:
        farm.start_slurm()
        farm.start_coordinator()
        started = time.monotonic()
        if not os.environ.get("PESC_ONLY_WALLTIME"):
            two_hundred_ranks(farm)
        log(f"200 ranks: passed ({time.monotonic() - started:.0f} s)")
        walltime_drain(farm)
        log(f"walltime: passed ({time.monotonic() - started:.0f} s)")
        wrong_partition(farm)
        log(f"wrong partition: passed ({time.monotonic() - started:.0f} s)")
        farm.coordinator.send_signal(signal.SIGTERM)
        farm.coordinator.wait(30)
        left = farm.squeue()
        assert not left, f"Slurm jobs left after the coordinator stopped:\n{left}"
        log("everything cancelled")
    except BaseException:
        for name in ("coordinator.log",):
            path = os.path.join(tmp, name)
            if os.path.exists(path):
                print(f"--- {name}\n" + open(path).read()[-6000:])
        raise
    finally:
        farm.stop()
        if not os.environ.get("PESC_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
