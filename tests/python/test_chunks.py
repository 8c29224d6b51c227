"""Short function-mode ranks travel in chunks (several ranks per attempt): each rank still runs once, in its own
output_dir, and comes back in rank order, also when the worker running a chunk is killed."""

import signal

import pesc
from conftest import start_coordinator, start_worker, stop


def test_short_ranks_share_attempts_yet_keep_their_own_output(coordinator):
    def tagged(rank):
        print(f"rank {rank}")
        return rank * 2

    res = pesc.run(tagged, 1500, coordinator=coordinator, progress=False, slots=2)
    assert res.values == [rank * 2 for rank in range(1500)]
    assert all(res[rank].output == f"rank {rank}\n" for rank in range(0, 1500, 37))
    attempts = {}
    for rank in range(1500):
        attempts.setdefault(res[rank].attempt, []).append(rank)
    assert max(len(ranks) for ranks in attempts.values()) > 1, "no rank shared an attempt: chunks were not used"
    for ranks in attempts.values():
        assert ranks == list(range(ranks[0], ranks[0] + len(ranks))), "a chunk holds consecutive ranks"


def test_a_chunk_on_a_killed_worker_runs_again_elsewhere_each_rank_once(tmp_path, monkeypatch):
    state, logs = tmp_path / "state", tmp_path / "logs"
    state.mkdir()
    logs.mkdir()
    coordinator, address, token = start_coordinator(state, logs, "--worker_lease_ms", "1500")
    processes = [coordinator]
    try:
        monkeypatch.setenv("PESC_TOKEN", token)  # the session's daemons keep theirs
        for name in ("doomed", "survivor"):
            (tmp_path / name).mkdir()
            processes.append(start_worker(address, tmp_path / name, logs / f"{name}.log", slots=1))

        def rank_work(rank):
            import time
            time.sleep(0.002)
            print(f"rank {rank}")
            return rank

        job = pesc.Farm(coordinator=address).map(rank_work, 3000)
        for seen, _ in enumerate(job.as_completed(), start=1):
            if seen == 600:
                processes[1].send_signal(signal.SIGKILL)  # mid-chunk: its ranks have to run again
        res = job.wait(progress=False)
        assert res.values == list(range(3000))
        assert all(res[rank].output == f"rank {rank}\n" for rank in range(3000))
        assert len({res[rank].worker for rank in range(3000)}) == 2, "both workers ran ranks before the kill"
    finally:
        stop(processes)


def test_an_interpreter_dying_mid_chunk_fails_its_rank_alone(coordinator):
    def fragile(rank):
        import os
        if rank == 700:
            os._exit(3)  # takes the warm interpreter down with it
        print(f"rank {rank}")
        return rank

    res = pesc.run(fragile, 1500, coordinator=coordinator, progress=False, slots=2)
    assert [r.rank for r in res.failed] == [700]
    assert "interpreter died" in res[700].output
    assert all(res[rank].output == f"rank {rank}\n" for rank in range(1500) if rank != 700)
