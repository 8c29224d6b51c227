"""Around a job: rerun only the ranks that failed (Results.retry_failed, Job.retry) and follow a rank's output while
it runs (Job.logs, pesc.logs), on the embedded farm and real daemons."""

import os
import time

import pytest

import pesc

FLAKY = """import os, sys
rank = int(os.environ["PESC_RANK"])
print(f"rank {rank} caf\\u00e9")
if rank in (2, 5) and not os.path.exists(sys.argv[-1]):
    sys.exit(3)
"""

SLOW = """echo "first of $PESC_RANK"
while [ ! -e "{release}" ]; do sleep 0.05; done
echo "last of $PESC_RANK"
"""


def slow_in(tmp_path):
    """A script whose ranks print a line, then wait for `release` before their last line."""
    release = tmp_path / "release"
    script = tmp_path / "slow.sh"
    script.write_text(SLOW.format(release=release))
    return script, release


def expected(ranks):
    return "".join(f"rank {r} caf\u00e9\n" for r in range(ranks))


def flaky_in(tmp_path):
    script = tmp_path / "flaky.py"
    script.write_text(FLAKY)
    return script, tmp_path / "fixed"


def test_retry_failed_reruns_only_the_failed_ranks_and_keeps_one_set_in_order(coordinator, tmp_path):
    script, marker = flaky_in(tmp_path)
    first = pesc.run(script, 8, [marker], coordinator=coordinator, slots=2, progress=False)
    assert [r.rank for r in first.failed] == [2, 5]
    marker.touch()
    again = first.retry_failed(progress=False)
    assert again.ok
    assert again.job_id == first.job_id
    assert [r.rank for r in again] == list(range(8))
    assert again.output == expected(8)
    assert again[2].attempt != first[2].attempt
    assert again[0].attempt == first[0].attempt, "a rank that succeeded did not run again"

    with pytest.raises(pesc.PescError) as nothing:
        again.retry_failed(progress=False)
    assert nothing.value.code == "FAILED_PRECONDITION"
    with pytest.raises(pesc.PescError) as out_of_range:
        again.retry_failed([8], progress=False)
    assert out_of_range.value.code == "OUT_OF_RANGE"
    named = again.retry_failed([0, 7], progress=False)
    assert named.output == expected(8)
    assert named[0].attempt != first[0].attempt, "a rank named runs again though it had succeeded"


def flaky_call(rank, marker):
    if rank in (2, 5) and not os.path.exists(marker):
        raise ValueError(f"rank {rank} is not fixed yet")
    return rank * 10


def test_a_functions_retried_ranks_give_their_values(coordinator, tmp_path):
    marker = str(tmp_path / "fixed")
    job = pesc.Farm(coordinator=coordinator, slots=2).map(flaky_call, 6, [marker])
    first = job.wait(progress=False)
    assert [r.rank for r in first.failed] == [2, 5]
    with pytest.raises(pesc.PescError) as running:
        pesc.Farm(coordinator=coordinator).map(flaky_call, 1, [marker]).retry()
    assert running.value.code == "FAILED_PRECONDITION" and "still running" in str(running.value)
    open(marker, "w").close()
    assert job.retry() == [2, 5]
    assert job.wait(progress=False).values == [0, 10, 20, 30, 40, 50]


def test_logs_show_a_slow_ranks_lines_before_it_ends(coordinator, tmp_path):
    script, release = slow_in(tmp_path)
    job = pesc.Farm(coordinator=coordinator, slots=2).map(script, 2)
    chunks = job.logs(1)
    text = ""
    while "first of 1\n" not in text:
        text += next(chunks)
    assert text == "first of 1\n"
    assert not job.done(), "the rank waits for the release: its line came while it ran"
    release.touch()
    text += "".join(chunks)
    assert text == "first of 1\nlast of 1\n"
    results = job.wait(progress=False)
    assert results[1].output == text
    assert "".join(pesc.logs(job, 0, follow=False)) == "first of 0\nlast of 0\n"
    with pytest.raises(pesc.PescError):
        job.logs(2)


def test_logs_of_a_job_by_its_id_on_the_daemons(daemons, tmp_path):
    script, release = slow_in(tmp_path)
    job = pesc.Farm(coordinator=daemons).map(script, 1)
    deadline = time.monotonic() + 30
    while "".join(pesc.logs(job.id, 0, follow=False, coordinator=daemons)) != "first of 0\n":
        assert time.monotonic() < deadline, "the rank's first line never showed"
        time.sleep(0.1)
    release.touch()
    assert "".join(pesc.logs(job.id, 0, coordinator=daemons)) == "first of 0\nlast of 0\n"
