// What a job's report tells its user: how much faster the farm made the job,
// on how many slots, where the rest of the time went, and a timeline that
// shows it.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

using std::chrono::milliseconds;
using TimePoint = std::chrono::system_clock::time_point;

// A fixed origin so times read as offsets in the tests.
const TimePoint kOrigin = TimePoint(std::chrono::hours(24 * 365 * 56));

TimePoint at(int64_t ms) { return kOrigin + milliseconds(ms); }

RankResult rank_run(int rank, const std::string& worker, int64_t start_ms, int64_t end_ms,
                    RankStatus status = RankStatus::kSucceeded) {
  RankResult result;
  result.rank = rank;
  result.worker = worker;
  result.start = at(start_ms);
  result.end = at(end_ms);
  result.duration = milliseconds(end_ms - start_ms);
  result.status = status;
  result.attempts = 1;
  return result;
}

// The rank after attempts on `lost_on` that were not kept.
RankResult after_attempts_on(RankResult rank, std::vector<std::string> lost_on) {
  rank.attempts = static_cast<int>(lost_on.size()) + 1;
  rank.other_attempt_workers = std::move(lost_on);
  return rank;
}

// Worker "a" runs ranks 0 and 1 side by side, then rank 2 (its third
// attempt, after two on "a") after a 10 ms gap; worker "b" runs rank 3, the
// longest, starting 100 ms late. The job was submitted 200 ms before the
// first start and finished 200 ms after the last end.
std::vector<RankResult> two_workers() {
  return {rank_run(0, "a", 0, 1000), rank_run(1, "a", 0, 1000),
          after_attempts_on(rank_run(2, "a", 1010, 2010), {"a", "a"}), rank_run(3, "b", 100, 2100)};
}

TEST(JobReportTest, SpeedupIsRankTimeOverWallAndEfficiencyIsPerInferredSlot) {
  JobReport report = JobReport::from("job1", two_workers(), at(-200), at(2300));
  EXPECT_EQ(report.ranks, 4);
  EXPECT_EQ(report.succeeded, 4);
  EXPECT_EQ(report.slots, 3) << "a ran two ranks at once, b one";
  EXPECT_EQ(report.wall, milliseconds(2500));
  EXPECT_EQ(report.rank_time, milliseconds(5000));
  EXPECT_DOUBLE_EQ(report.speedup, 2.0);
  EXPECT_NEAR(report.efficiency, 2.0 / 3.0, 1e-12);
}

TEST(JobReportTest, LostSlotTimeIsSplitByWhereItWentAndAddsUp) {
  JobReport report = JobReport::from("job1", two_workers(), at(-200), at(2300));
  EXPECT_EQ(report.lost_before_first_start, milliseconds(3 * 200));
  EXPECT_EQ(report.lost_ramp_up, milliseconds(100)) << "b's lane started 100 ms after the first rank";
  EXPECT_EQ(report.lost_between_ranks, milliseconds(10));
  EXPECT_EQ(report.lost_tail, milliseconds(90 + 1100)) << "a's lanes idle while b's rank 3 finishes";
  EXPECT_EQ(report.lost_after_last_end, milliseconds(3 * 200));
  EXPECT_EQ(report.lost(), report.slots * report.wall - report.rank_time);
  EXPECT_EQ(report.overhead_per_rank, std::chrono::microseconds(2500 * 1000 / 4));
}

TEST(JobReportTest, PerWorkerTableHasRanksMeanMaxAndRetries) {
  JobReport report = JobReport::from("job1", two_workers(), at(-200), at(2300));
  ASSERT_EQ(report.workers.size(), 2u);
  const WorkerReport& a = report.workers[0];
  EXPECT_EQ(a.worker, "a");
  EXPECT_EQ(a.slots, 2);
  EXPECT_EQ(a.ranks, 3);
  EXPECT_EQ(a.mean_rank_time, milliseconds(1000));
  EXPECT_EQ(a.max_rank_time, milliseconds(1000));
  EXPECT_EQ(a.retried_ranks, 1);
  EXPECT_EQ(a.lost_attempts, 2) << "rank 2 took three attempts, all on a";
  EXPECT_NEAR(a.utilization, 3000.0 / (2 * 2500.0), 1e-12);
  const WorkerReport& b = report.workers[1];
  EXPECT_EQ(b.first_lane, 2);
  EXPECT_EQ(b.ranks, 1);
  EXPECT_EQ(b.max_rank_time, milliseconds(2000));
  EXPECT_EQ(b.max_rank, 3);
  EXPECT_EQ(report.lanes, (std::vector<std::string>{"a #0", "a #1", "b #0"}));
}

TEST(JobReportTest, AnAttemptNotKeptIsChargedToTheWorkerThatRanItNotToTheOneThatRanTheLast) {
  // Rank 0 was lost with worker "gone", then failed once on "b", then
  // succeeded on "a"; "gone" kept no rank at all.
  std::vector<RankResult> ranks = {after_attempts_on(rank_run(0, "a", 0, 1000), {"gone", "b"}),
                                   rank_run(1, "b", 0, 1000)};
  JobReport report = JobReport::from("j", ranks);
  ASSERT_EQ(report.workers.size(), 3u);
  EXPECT_EQ(report.workers[0].worker, "a");
  EXPECT_EQ(report.workers[0].retried_ranks, 1);
  EXPECT_EQ(report.workers[0].lost_attempts, 0);
  EXPECT_EQ(report.workers[1].worker, "b");
  EXPECT_EQ(report.workers[1].lost_attempts, 1);
  EXPECT_EQ(report.workers[2].worker, "gone");
  EXPECT_EQ(report.workers[2].lost_attempts, 1);
  EXPECT_EQ(report.workers[2].ranks, 0);
  EXPECT_EQ(report.slots, 2) << "a worker that kept no rank adds no lane";
  EXPECT_NE(report.to_text().find("gone"), std::string::npos) << report.to_text();
}

TEST(JobReportTest, SlotsAreTheMostRanksAtOnceAndBackToBackRanksShareALane) {
  // Three ranks overlap at t = 50; rank 3 starts the moment rank 0 ends.
  std::vector<RankResult> ranks = {rank_run(0, "w", 0, 100), rank_run(1, "w", 10, 300), rank_run(2, "w", 50, 120),
                                   rank_run(3, "w", 100, 200), rank_run(4, "w", 120, 250)};
  JobReport report = JobReport::from("j", ranks);
  EXPECT_EQ(report.slots, 3);
  auto lane_of = [&](int rank) {
    return std::find_if(report.timeline.begin(), report.timeline.end(), [&](const TimelineBar& b) {
             return b.rank == rank;
           })->lane;
  };
  EXPECT_EQ(lane_of(3), lane_of(0));
  EXPECT_EQ(lane_of(4), lane_of(2));
  // Without the farm's times the job spans first start to last end: nothing lost before or after.
  EXPECT_EQ(report.wall, milliseconds(300));
  EXPECT_EQ(report.lost_before_first_start + report.lost_after_last_end, milliseconds(0));
}

TEST(JobReportTest, RanksThatNeverRanAreCountedButNotTimed) {
  std::vector<RankResult> ranks = two_workers();
  RankResult cancelled;
  cancelled.rank = 4;
  cancelled.status = RankStatus::kCancelled;
  ranks.push_back(cancelled);
  ranks[1].status = RankStatus::kFailed;
  JobReport report = JobReport::from("job1", ranks, at(-200), at(2300));
  EXPECT_EQ(report.ranks, 5);
  EXPECT_EQ(report.never_ran, 1);
  EXPECT_EQ(report.cancelled, 1);
  EXPECT_EQ(report.failed, 1);
  EXPECT_EQ(report.workers[0].failed, 1);
  EXPECT_EQ(report.timeline.size(), 4u);
  EXPECT_EQ(report.rank_time, milliseconds(5000));
}

TEST(JobReportTest, WorkerClocksAheadOfTheCoordinatorNeverGiveNegativeTimes) {
  // The coordinator says submitted at 500 and finished at 1500, but the worker's clock put the rank at 0..2000.
  JobReport report = JobReport::from("j", {rank_run(0, "w", 0, 2000)}, at(500), at(1500));
  EXPECT_EQ(report.wall, milliseconds(2000));
  EXPECT_DOUBLE_EQ(report.speedup, 1.0);
  EXPECT_EQ(report.lost(), milliseconds(0));
}

TEST(JobReportTest, NoRankRanGivesAnEmptyReportNotNonsense) {
  RankResult cancelled;
  cancelled.status = RankStatus::kCancelled;
  JobReport report = JobReport::from("j", {cancelled}, at(0), at(100));
  EXPECT_EQ(report.slots, 0);
  EXPECT_EQ(report.speedup, 0.0);
  EXPECT_NE(report.to_text().find("no rank ran"), std::string::npos);
  EXPECT_NE(report.timeline_svg().find("</svg>"), std::string::npos);
}

TEST(JobReportTest, TextStatesSpeedupSlotsLossesAndTheWorkerTable) {
  std::string text = JobReport::from("job1", two_workers(), at(-200), at(2300)).to_text();
  EXPECT_NE(text.find("job job1: 4 ranks, 4 succeeded"), std::string::npos) << text;
  EXPECT_NE(text.find("2.500 s"), std::string::npos) << text;
  EXPECT_NE(text.find("2.00     on 3 slots (efficiency 66.7 %)"), std::string::npos) << text;
  EXPECT_NE(text.find("625.0 ms per rank"), std::string::npos) << text;
  EXPECT_NE(text.find("idle while the last ranks finished (imbalance)"), std::string::npos) << text;
  // a: 2 slots, 3 ranks, busy 3 s, mean 1 s, max 1 s, 1 retried rank, 2 lost attempts.
  EXPECT_NE(text.find("  a          2      3     3.000    1.000    1.000     (0)   60%       1      2      0"),
            std::string::npos)
      << text;
}

TEST(JobReportTest, TimelineSvgHasOneBarPerRankOnItsSlotRow) {
  std::vector<RankResult> ranks = two_workers();
  ranks[3].worker = "lab<&>b";
  ranks[1].status = RankStatus::kFailed;
  std::string svg = JobReport::from("job1", ranks, at(-200), at(2300)).timeline_svg();
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  size_t bars = 0;
  for (size_t at_bar = svg.find("<title>rank "); at_bar != std::string::npos;
       at_bar = svg.find("<title>rank ", at_bar + 1)) {
    ++bars;
  }
  EXPECT_EQ(bars, 4u);
  EXPECT_NE(svg.find("<title>rank 1 on a #1: 1.000 s, failed</title>"), std::string::npos) << svg;
  EXPECT_NE(svg.find("fill=\"#e45756\""), std::string::npos) << "failed ranks are red";
  EXPECT_NE(svg.find(">lab&lt;&amp;&gt;b #0</text>"), std::string::npos) << "worker names are escaped";
  EXPECT_EQ(svg.find("lab<&>b"), std::string::npos);
  EXPECT_NE(svg.find("speedup 2.00 on 3 slots"), std::string::npos);
}

// Worker "w" runs two ranks with a paused stretch between them and pauses
// again (still paused) at the end; "idle" paused all along but ran nothing.
TEST(JobReportTest, APausedWorkersIdleTimeIsPausedNotDispatch) {
  const std::vector<WorkerPause> pauses = {
      {"w", at(1200), at(2800), "the host's CPU was 90% busy with other work (over 70%)"},
      {"w", at(4100), TimePoint(), "disk full: /work has 1 MiB free"},
      {"idle", at(0), at(4000), "the host's CPU was 99% busy with other work (over 70%)"}};
  JobReport report =
      JobReport::from("j", {rank_run(0, "w", 0, 1000), rank_run(1, "w", 3000, 4000)}, at(-200), at(4200), pauses);
  EXPECT_EQ(report.lost_between_ranks, milliseconds(400));
  EXPECT_EQ(report.lost_after_last_end, milliseconds(100));
  EXPECT_EQ(report.lost_paused, milliseconds(1700));
  EXPECT_EQ(report.lost(), report.slots * report.wall - report.rank_time);
  EXPECT_EQ(report.paused, milliseconds(1700));
  ASSERT_EQ(report.workers.size(), 1u);
  EXPECT_EQ(report.workers[0].paused, milliseconds(1700));
  EXPECT_EQ(report.paused_reasons, (std::vector<std::string>{"disk full: /work has 1 MiB free",
                                                             "the host's CPU was 90% busy with other work (over 70%)"}));
  ASSERT_EQ(report.paused_stretches.size(), 2u);
  EXPECT_EQ(report.paused_stretches[0].start, milliseconds(1400));
  EXPECT_EQ(report.paused_stretches[0].end, milliseconds(3000));
  EXPECT_EQ(report.paused_stretches[1].end, report.wall);

  const std::string text = report.to_text();
  EXPECT_NE(text.find("paused                  1.700 s   38.6 % of the wall time"), std::string::npos) << text;
  EXPECT_NE(text.find("paused worker: owner present / CPU busy / disk full"), std::string::npos) << text;
  const std::string svg = report.timeline_svg();
  EXPECT_NE(svg.find("<rect class=\"paused\""), std::string::npos) << svg;
  EXPECT_NE(svg.find(">worker paused</text>"), std::string::npos) << svg;
}

TEST(JobReportTest, AJobNoWorkerPausedInSaysNothingOfPauses) {
  const std::string text = JobReport::from("job1", two_workers(), at(-200), at(2300)).to_text();
  EXPECT_EQ(text.find("of the wall time"), std::string::npos) << text;
  EXPECT_EQ(JobReport::from("job1", two_workers()).timeline_svg().find("paused"), std::string::npos);
}

TEST(JobReportTest, ResultsOfARealJobReportTheSlotsItRanOn) {
  Farm farm("shell", {.slots = 2});
  std::filesystem::path script = std::filesystem::temp_directory_path() / "pesc-report-test-sleep.sh";
  std::ofstream(script) << "sleep 0.3\n";
  Results results = farm.map(script, 4).wait();
  std::filesystem::remove(script);
  JobReport report = results.report();
  EXPECT_EQ(report.job_id, results.job_id());
  EXPECT_EQ(report.succeeded, 4);
  EXPECT_EQ(report.slots, 2);
  EXPECT_GE(report.wall, milliseconds(600));
  EXPECT_GT(report.speedup, 1.4) << report.to_text();
  EXPECT_LE(report.speedup, 2.0) << report.to_text();
  EXPECT_EQ(report.lost(), report.slots * report.wall - report.rank_time);
  EXPECT_NE(results.timeline_svg().find("<title>rank 3 on "), std::string::npos);
}

}  // namespace
}  // namespace pesc
