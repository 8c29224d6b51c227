"""Function mode: fn(rank, *params) on the farm, values back as objects, remote exceptions as RankFailed."""

import threading

import numpy as np
import pytest

import pesc


def test_closure_values_in_rank_order(coordinator):
    offset = 100

    def trial(rank, n):
        import time
        time.sleep(0.05 * (3 - rank))
        return offset + rank * n

    res = pesc.run(trial, repetitions=4, params=[10], coordinator=coordinator, progress=False, slots=2)
    assert res.values == [100, 110, 120, 130]
    assert res.ok


def test_numpy_arrays_in_and_out(coordinator):
    base = np.arange(6, dtype=np.float64).reshape(2, 3)
    res = pesc.run(lambda rank, a: a * rank, 3, params=[base], coordinator=coordinator, progress=False, slots=2)
    for rank, value in enumerate(res.values):
        assert isinstance(value, np.ndarray)
        np.testing.assert_array_equal(value, base * rank)


def test_remote_exception_raises_rank_failed_with_traceback(coordinator):
    def fragile(rank):
        if rank == 2:
            raise ValueError(f"bad rank {rank}")
        return rank

    res = pesc.run(fragile, 3, coordinator=coordinator, progress=False, slots=2)
    assert [r.rank for r in res.failed] == [2]
    with pytest.raises(pesc.RankFailed) as caught:
        res.values
    error = caught.value
    assert error.rank == 2
    assert "ValueError: bad rank 2" in str(error) and "rank 2" in str(error)
    assert "Traceback" in error.remote_traceback and "in fragile" in error.remote_traceback


def test_values_of_every_size_come_back_with_the_ranks_own_files(coordinator):
    # Small values travel over the runner's pipe, mid-sized ones too but go
    # out through a blob, and those over 1 MiB are written to output_dir.
    sizes = [10, 400 * 1024, 1536 * 1024]

    def trial(rank):
        import os
        print("rank", rank)
        with open(os.path.join(os.environ["PESC_OUTPUT_DIR"], "note.txt"), "w") as note:
            note.write(f"note {rank}")
        return bytes([rank % 251]) * sizes[rank % 3]

    res = pesc.run(trial, 30, coordinator=coordinator, progress=False, slots=2)
    for rank, value in enumerate(res.values):
        assert value == bytes([rank % 251]) * sizes[rank % 3], rank
        assert res[rank].output == f"rank {rank}\n"
        assert res.read_file(rank, "note.txt") == f"note {rank}".encode()


def test_map_items_in_item_order(coordinator):
    assert pesc.map(lambda x: x * x, range(5), coordinator=coordinator, progress=False, slots=2) == [0, 1, 4, 9, 16]


def test_unpicklable_function_fails_at_submit():
    lock = threading.Lock()

    def holds_lock(rank):
        return lock.locked()

    with pytest.raises(pesc.SubmitError, match="cannot pickle the function .*holds_lock.*lock"):
        pesc.run(holds_lock, 2, progress=False)


def test_unpicklable_parameter_and_item_fail_at_submit():
    with pytest.raises(pesc.SubmitError, match=r"cannot pickle parameter 1 \(generator\)"):
        pesc.run(lambda rank, a, b: a, 2, params=[1, (x for x in [])], progress=False)
    with pytest.raises(pesc.SubmitError, match=r"cannot pickle item 2 \(lock\)"):
        pesc.map(str, [1, 2, threading.Lock()], progress=False)


def test_values_only_for_functions(tmp_path):
    sim = tmp_path / "s.py"
    sim.write_text("print(1)\n")
    with pytest.raises(TypeError, match="function-mode"):
        pesc.run(sim, 1, progress=False).values


def test_parallel_ranks_meet_rank_zero_over_tcp(coordinator):
    def meet_rank_zero(rank):
        """A gang rank: rank 0 listens on MASTER_PORT and collects the others' ranks over TCP."""
        import os
        import socket
        import time

        address, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
        if rank == 0:
            with socket.create_server((address, port)) as server:
                got = []
                for _ in range(int(os.environ["WORLD_SIZE"]) - 1):
                    connection, _ = server.accept()
                    with connection:
                        got.append(int(connection.recv(16).decode()))
                return sorted(got)
        for _ in range(200):
            try:
                with socket.create_connection((address, port), timeout=5) as connection:
                    connection.sendall(str(rank).encode())
                return rank
            except OSError:
                time.sleep(0.05)  # rank 0 is not listening yet
        raise RuntimeError(f"rank {rank} never reached rank 0 at {address}:{port}")

    values = pesc.run(meet_rank_zero, 2, parallel=True, coordinator=coordinator, progress=False).values
    assert values == [[1], 1]


def test_lab_options_reach_the_farm(coordinator):
    with pytest.raises(pesc.SubmitError, match="GPUs per rank"):
        pesc.run(lambda rank: rank, 1, min_capability=8.0, coordinator=coordinator, progress=False)
    assert pesc.run(lambda rank: rank, 3, no_duplicates=True, coordinator=coordinator, progress=False).values == [0, 1, 2]
