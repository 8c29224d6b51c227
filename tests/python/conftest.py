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


def start_coordinator(state: Path, logs: Path, *flags: str):
    """A pesc-coordinator on 127.0.0.1:0 keeping its state in `state`; returns it, its address and its admin token."""
    coordinator = subprocess.Popen(
        [_daemon("PESC_COORDINATOR_BIN", "pesc-coordinator"), "--listen", "127.0.0.1:0", "--state-dir", state, *flags],
        stdout=open(logs / "coordinator.log", "wb"), stderr=subprocess.STDOUT)
    address_file = state / "coordinator.address"
    deadline = time.monotonic() + 20
    while not (address_file.exists() and address_file.read_text().strip()):
        if coordinator.poll() is not None or time.monotonic() > deadline:
            stop([coordinator])
            pytest.fail("pesc-coordinator did not start: " + (logs / "coordinator.log").read_text())
        time.sleep(0.05)
    # The admin token is written before the address.
    return coordinator, address_file.read_text().strip(), (state / "admin.token").read_text().strip()


def start_worker(address: str, work: Path, log: Path, slots: int = 2, env=None) -> subprocess.Popen:
    """A pesc-worker for `address` running Python ranks with /usr/bin/python3."""
    return subprocess.Popen(
        [_daemon("PESC_WORKER_BIN", "pesc-worker"), "--coordinator", address, "--slots", str(slots),
         "--work-dir", work, "--interpreter", "python=/usr/bin/python3",
         # Some tests watch their ranks through files in their own temporary
         # dirs, which sandboxed ranks cannot see; isolation has C++ tests.
         # A busy test machine must not pause it (owner_test covers that).
         "--no-sandbox", "--run-as=", "--owners-first=false"],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def stop(processes) -> None:
    """Terminates the daemons, the last started first, and kills those that linger."""
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def daemons(tmp_path_factory):
    """A pesc-coordinator and a 2-slot pesc-worker on 127.0.0.1; yields the coordinator's address."""
    state = tmp_path_factory.mktemp("coordinator")
    work = tmp_path_factory.mktemp("worker")
    logs = tmp_path_factory.mktemp("logs")
    coordinator, address, token = start_coordinator(state, logs)
    processes = [coordinator]
    try:
        # Every client in this session and the worker present the admin token.
        os.environ["PESC_TOKEN"] = token
        processes.append(start_worker(address, work, logs / "worker.log"))
        yield address
    finally:
        stop(processes)


@pytest.fixture(params=["embedded", "daemons"])
def coordinator(request):
    """None (the embedded farm) or the address of the loopback daemons."""
    if request.param == "embedded":
        return None
    return request.getfixturevalue("daemons")


@pytest.fixture(autouse=True)
def _no_inherited_coordinator(monkeypatch):
    monkeypatch.delenv("PESC_COORDINATOR", raising=False)
