"""Bad inputs raise the package's exceptions with messages that say what is wrong."""

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
