"""seed=: every rank (or Executor call) draws from its own stream of the seed, whatever runs it and however."""

import random
import time

import numpy as np
import pytest

import pesc


def draws(stream: int, seed: int = 42) -> tuple[float, float]:
    """What stream `stream` of `seed` gives for random.random() and numpy.random.random()."""
    generator = random.Random()
    generator.seed(f"pesc:{seed}:{stream}", version=2)
    state = np.random.SeedSequence(seed).spawn(stream + 1)[stream].generate_state(8)
    return generator.random(), float(np.random.RandomState(state).random_sample())


def rank_draws(rank, *_):
    import random

    import numpy
    return random.random(), float(numpy.random.random())


def test_each_rank_has_its_own_stream_whatever_the_slots(coordinator):
    for slots in (1, 3):
        res = pesc.run(rank_draws, 12, seed=42, coordinator=coordinator, slots=slots, progress=False)
        assert res.values == [draws(rank) for rank in range(12)]
    assert len(set(res.values)) == 12
    other = pesc.run(rank_draws, 2, seed=43, coordinator=coordinator, progress=False).values
    assert other == [draws(rank, seed=43) for rank in range(2)] and other != res.values[:2]


def test_chunked_ranks_keep_their_streams(coordinator):
    res = pesc.run(rank_draws, 1500, seed=7, coordinator=coordinator, slots=2, progress=False)
    assert len({r.attempt for r in res}) < 1500, "no chunks were used"
    assert res.values == [draws(rank, seed=7) for rank in range(1500)]


def test_a_retried_rank_draws_the_same_numbers(coordinator, tmp_path):
    marker = tmp_path / "failed-once"

    def flaky(rank):
        import random
        first = random.random()
        if rank == 1 and not marker.exists():
            marker.write_text("x")
            raise RuntimeError("first attempt fails")
        return first

    res = pesc.run(flaky, 3, seed=5, max_attempts=2, coordinator=coordinator, progress=False)
    assert res[1].attempt > 1
    assert res.values == [draws(rank, seed=5)[0] for rank in range(3)]


def test_scripts_get_pesc_seed(coordinator, tmp_path):
    script = tmp_path / "seeded.py"
    script.write_text("import os\nprint(os.environ.get('PESC_SEED'), os.environ['PESC_RANK'])\n")
    res = pesc.run(script, 2, seed=2**64 - 1, coordinator=coordinator, progress=False)
    assert res.output == f"{2**64 - 1} 0\n{2**64 - 1} 1\n"
    assert pesc.run(script, 1, coordinator=coordinator, progress=False).output == "None 0\n"


def test_executor_calls_draw_from_their_submission_index(coordinator):
    with pesc.Executor(coordinator, seed=11) as executor:
        first = [executor.submit(rank_draws, 0) for _ in range(3)]
        time.sleep(0.3)  # a second job
        second = list(executor.map(rank_draws, range(4)))
    assert [f.result() for f in first] + second == [draws(i, seed=11) for i in range(7)]


@pytest.mark.parametrize("seed, error", [(-1, ValueError), (2**64, ValueError), (1.5, TypeError), ("1", TypeError)])
def test_a_bad_seed_is_refused_before_anything_runs(seed, error):
    with pytest.raises(error, match="seed must be"):
        pesc.run(rank_draws, 1, seed=seed, progress=False)
