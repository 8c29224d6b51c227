"""Reports: what a job gained from the farm, and its timeline as SVG and as a matplotlib figure."""

import pytest

import pesc


def napping_job(tmp_path, coordinator, ranks=4):
    """`ranks` ranks of 0.3 s each on 2 slots: the speedup is known in advance (just under 2)."""
    nap = tmp_path / "nap.sh"
    nap.write_text("sleep 0.3\n")
    return pesc.run(nap, repetitions=ranks, coordinator=coordinator, progress=False, slots=2)


def test_report_states_speedup_slots_and_where_time_went(tmp_path, coordinator):
    report = napping_job(tmp_path, coordinator).report()
    assert report.succeeded == 4 and report.slots == 2
    assert report.wall >= 0.6 and report.rank_time >= 1.2
    assert 1.4 < report.speedup <= 2.0 and report.efficiency == pytest.approx(report.speedup / 2)
    # The lost slot-time is exactly the capacity the ranks did not use, split into its parts.
    assert report.lost == pytest.approx(report.slots * report.wall - report.rank_time, abs=1e-9)
    assert sum(seconds for _, seconds in report.lost_parts) == pytest.approx(report.lost, abs=1e-9)
    assert [w.ranks for w in report.workers] == [4] and report.workers[0].max_rank_time >= 0.3
    # No worker paused: nothing lost to pauses, nothing to draw for them.
    assert dict(report.lost_parts)["paused"] == 0 and report.paused == 0 and report.paused_reasons == []
    assert report.paused_stretches == [] and report.workers[0].paused == 0
    text = str(report)
    assert "speedup" in text and report.workers[0].worker in text
    assert report.timeline_svg().count("<title>rank ") == 4


def test_plot_draws_a_row_per_slot_and_a_bar_per_rank(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    res = napping_job(tmp_path, None, ranks=5)
    ax = res.plot()
    report = res.report()
    assert [label.get_text() for label in ax.get_yticklabels()] == report.lanes
    bars = [path for collection in ax.collections for path in collection.get_paths()]
    assert len(bars) == 5
    assert f"speedup {report.speedup:.2f}" in ax.get_title()
    ax.figure.savefig(tmp_path / "timeline.png")
    assert (tmp_path / "timeline.png").stat().st_size > 5000
