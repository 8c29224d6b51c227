"""Ctrl-C in a Python session cancels the job on the farm: no rank process survives."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

RANK = textwrap.dedent('''\
    import os, sys, time
    with open(os.path.join(sys.argv[sys.argv.index("--parameters") + 1], str(os.getpid())), "w"):
        pass
    time.sleep(120)
    ''')

SESSION = textwrap.dedent('''\
    import sys
    import pesc
    try:
        pesc.run(sys.argv[1], 4, params=[sys.argv[2]], coordinator=sys.argv[3] or None, progress=False, slots=2)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        raise
    ''')


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is gone for our purpose
        return stat.read().split()[2] != "Z"


def test_sigint_cancels_the_job_and_kills_its_ranks(tmp_path, coordinator):
    pids = tmp_path / "pids"
    pids.mkdir()
    rank = tmp_path / "sleeper.py"
    rank.write_text(RANK)
    # Ctrl-C as a terminal delivers it, even when these tests run in a background job (which ignores SIGINT, and
    # a Python started with SIGINT ignored has no KeyboardInterrupt).
    session = subprocess.Popen([sys.executable, "-c", SESSION, str(rank), str(pids), coordinator or ""],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 30
        while len(os.listdir(pids)) < 2:
            assert session.poll() is None, session.communicate()
            assert time.monotonic() < deadline, "ranks did not start"
            time.sleep(0.05)
        session.send_signal(signal.SIGINT)
        out, err = session.communicate(timeout=20)
    finally:
        if session.poll() is None:
            session.kill()
    assert session.returncode != 0 and "interrupted" in out, err
    assert "KeyboardInterrupt" in err
    assert "pesc: cancelled job " in err, "the session said whether the cancel was confirmed"
    started = [int(p) for p in os.listdir(pids)]
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in started if alive(pid)], "rank processes survived Ctrl-C"
