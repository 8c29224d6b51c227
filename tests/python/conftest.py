"""Fixtures: every test that takes `coordinator` runs against the embedded farm and real daemons on loopback.

scripts/test.sh sets PESC_COORDINATOR_BIN and PESC_WORKER_BIN to the build's
daemons; without them the daemon runs look for build/daemons/ in this tree.
"""

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _daemon(variable: str, name: str) -> Path:
    path = Path(os.environ.get(variable) or ROOT / "build" / "daemons" / name)
    if not path.exists():
        pytest.fail(f"{name} not found at {path}; set {variable}")
    return path


@pytest.fixture(scope="session")
def daemons(tmp_path_factory):
    """A pesc-coordinator and a 2-slot pesc-worker on 127.0.0.1; yields the coordinator's address."""
    state = tmp_path_factory.mktemp("coordinator")
    work = tmp_path_factory.mktemp("worker")
    logs = tmp_path_factory.mktemp("logs")
    coordinator = subprocess.Popen(
        [_daemon("PESC_COORDINATOR_BIN", "pesc-coordinator"), "--listen", "127.0.0.1:0", "--state-dir", state],
        stdout=open(logs / "coordinator.log", "wb"), stderr=subprocess.STDOUT)
    processes = [coordinator]
    try:
        address_file = state / "coordinator.address"
        deadline = time.monotonic() + 20
        while not (address_file.exists() and address_file.read_text().strip()):
            if coordinator.poll() is not None or time.monotonic() > deadline:
                pytest.fail("pesc-coordinator did not start: " + (logs / "coordinator.log").read_text())
            time.sleep(0.05)
        address = address_file.read_text().strip()
        # The coordinator's admin token (written before its address): the
        # worker and every client in this session present it via PESC_TOKEN.
        os.environ["PESC_TOKEN"] = (state / "admin.token").read_text().strip()
        processes.append(subprocess.Popen(
            [_daemon("PESC_WORKER_BIN", "pesc-worker"), "--coordinator", address, "--slots", "2",
             "--work-dir", work, "--interpreter", "python=/usr/bin/python3",
             # Some tests watch their ranks through files in their own temporary
             # dirs, which sandboxed ranks cannot see; isolation has C++ tests.
             # A busy test machine must not pause it (owner_test covers that).
             "--no-sandbox", "--run-as=", "--owners-first=false"],
            stdout=open(logs / "worker.log", "wb"), stderr=subprocess.STDOUT))
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(params=["embedded", "daemons"])
def coordinator(request):
    """None (the embedded farm) or the address of the loopback daemons."""
    if request.param == "embedded":
        return None
    return request.getfixturevalue("daemons")


@pytest.fixture(autouse=True)
def _no_inherited_coordinator(monkeypatch):
    monkeypatch.delenv("PESC_COORDINATOR", raising=False)
