"""pesc.Farm(pool=...): a session whose ranks run on batch-system pilots.

sbatch, squeue and scancel are stand-ins (tests/data/slurm_stand_ins, first
on PATH) that start this build's pesc-worker as the pilots; the real Slurm is
tests/slurm/test_slurm_session.py's.
"""
import os
import subprocess
import sys
import time

import pytest

import pesc

WORKER = os.environ.get("PESC_WORKER_BIN")
pytestmark = pytest.mark.skipif(not WORKER, reason="needs PESC_WORKER_BIN (this build's pesc-worker)")


def script(path, text):
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o700)
    return path


STAND_INS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "slurm_stand_ins")


@pytest.fixture
def batch(tmp_path, monkeypatch):
    """Stand-ins for Slurm's commands, keeping their state in tmp_path."""
    monkeypatch.setenv("PATH", f"{STAND_INS}:{os.environ['PATH']}")
    monkeypatch.setenv("PESC_BATCH_DIR", str(tmp_path))
    return tmp_path


def pool_options(**more):
    return {"partition": "debug", "max_workers": 1, "slots_per_worker": 2, "listen": "127.0.0.1:0",
            "worker": WORKER, "worker_args": ["--run-as="], **more}


def square(x):
    return x * x


def test_ranks_run_on_pilots_and_the_with_block_cancels_them(batch):
    rank = script(batch / "rank.sh", 'echo "rank $PESC_RANK in job ${SLURM_JOB_ID:-none}"\n')
    sessions = batch / "sessions"
    with pesc.Farm(pool=pool_options(), state_dir=sessions) as farm:
        assert farm.describe().startswith("session coordinator at 127.0.0.1:")
        results = farm.map(str(rank), 4).wait(progress=False)
        assert results.output == "".join(f"rank {r} in job 101\n" for r in range(4))
        assert all(r.worker.startswith("pilot-session-") for r in results)
        # Function mode runs with this interpreter, on the same pilots.
        assert farm.map(square, 3).wait(progress=False).values == [0, 1, 4]
        assert farm.map_items(square, [1, 2, 3]).wait(progress=False).values == [1, 4, 9]
    assert (batch / "scancel.args").read_text().split() == ["101"]
    assert os.listdir(sessions) == []
    deadline = time.monotonic() + 20
    while subprocess.run(["pgrep", "-f", "pilot-session-"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "a pilot still runs after the session closed"
        time.sleep(0.1)


def test_a_pool_option_that_does_not_exist_is_named():
    with pytest.raises(pesc.PescError, match="unknown pool option max_worker"):
        pesc.Farm(pool={"max_worker": 3})


def test_the_interpreters_exit_ends_a_session_left_open(batch):
    rank = script(batch / "rank.sh", "echo hi\n")
    sessions = batch / "sessions"
    left_open = f"""
import pesc
farm = pesc.Farm(pool={pool_options()!r}, state_dir={str(sessions)!r})
print(farm.map({str(rank)!r}, 2).wait(progress=False).output, end="")
"""
    done = subprocess.run([sys.executable, "-c", left_open], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hi\nhi\n"
    assert (batch / "scancel.args").read_text().split() == ["101"]
    assert os.listdir(sessions) == []


def test_the_one_call_helpers_take_a_pool_and_end_its_session(batch):
    rank = script(batch / "rank.sh", 'echo "rank $PESC_RANK in job ${SLURM_JOB_ID:-none}"\n')
    results = pesc.run(str(rank), 3, pool=pool_options(), progress=False)
    assert results.output == "".join(f"rank {r} in job 101\n" for r in range(3))
    assert pesc.map(square, [1, 2, 3], pool=pool_options(), progress=False) == [1, 4, 9]
    assert (batch / "scancel.args").exists(), "the sessions' pilots were not cancelled"
    deadline = time.monotonic() + 20
    while subprocess.run(["pgrep", "-f", "pilot-session-"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "a pilot still runs after the one call returned"
        time.sleep(0.1)
