"""Bad inputs raise the package's exceptions with messages that say what is wrong."""

import tarfile
import time

import pytest

import pesc


def test_missing_script_is_a_submit_error(tmp_path):
    missing = tmp_path / "nope.py"
    with pytest.raises(pesc.SubmitError) as caught:
        pesc.run(missing, 2, progress=False)
    assert "nope.py" in str(caught.value)
    assert isinstance(caught.value, pesc.PescError) and isinstance(caught.value, ValueError)


def test_bad_repetitions(tmp_path):
    sim = tmp_path / "s.py"
    sim.write_text("pass\n")
    with pytest.raises(pesc.SubmitError, match="at least 1"):
        pesc.run(sim, 0, progress=False)
    with pytest.raises(TypeError, match="repetitions must be an int"):
        pesc.run(sim, "3", progress=False)


def test_unknown_domain_is_a_submit_error(tmp_path):
    sim = tmp_path / "s.cob"
    sim.write_text("x\n")
    with pytest.raises(pesc.PescError, match="cobol"):
        pesc.run(sim, 1, domain="cobol", progress=False)


def test_unreachable_coordinator(tmp_path):
    sim = tmp_path / "s.py"
    sim.write_text("pass\n")
    with pytest.raises(pesc.FarmUnavailable) as caught:
        pesc.run(sim, 1, coordinator="127.0.0.1:1", progress=False)
    assert isinstance(caught.value, ConnectionError)


def test_rank_index_out_of_range(tmp_path):
    sim = tmp_path / "s.py"
    sim.write_text("pass\n")
    res = pesc.run(sim, 2, progress=False)
    with pytest.raises(IndexError, match="rank 5"):
        res[5]
    with pytest.raises(pesc.NotFound):
        res.read_file(0, "missing.txt")


def test_a_job_with_nowhere_to_run_says_why_and_cancel_ends_it(daemons, capsys):
    job = pesc.Farm(coordinator=daemons).map(lambda rank: rank, 2, rooms=["lab-z"])
    with pytest.raises(TimeoutError):
        job.wait(timeout=4)
    assert "pesc: the ranks wait: no connected worker is in room lab-z" in capsys.readouterr().err
    assert "lab-z" in job.progress().waiting
    job.cancel()
    assert [rank.status for rank in job.results()] == ["cancelled", "cancelled"]


def _archive_without_shebang(tmp_path):
    """A tar holding `prog`, executable but with no #! line: what a new user writes first."""
    prog = tmp_path / "prog"
    prog.write_text("echo never\n")
    prog.chmod(0o755)
    archive = tmp_path / "app.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(prog, arcname="prog")
    return archive


def test_a_job_whose_program_cannot_execute_fails_fast(tmp_path):
    started = time.monotonic()
    with pytest.raises(pesc.JobFailed, match="#!") as caught:
        pesc.run(_archive_without_shebang(tmp_path), 20, domain="native", entry="prog", progress=False)
    assert time.monotonic() - started < 15
    assert "failed" in str(caught.value)


def test_a_local_file_that_cannot_execute_is_refused_at_submit(tmp_path):
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o644)
    with pytest.raises(pesc.SubmitError, match=r"chmod \+x"):
        pesc.run(tool, 2, progress=False)


def test_each_failed_rank_says_whose_fault_it_was(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text('[ "$PESC_RANK" = 1 ] && exit 3\n:\n')
    res = pesc.run(script, 2, progress=False)
    assert [rank.failure_class for rank in res] == ["", "rank"]
    assert [rank.left_out for rank in res] == [[], []]
