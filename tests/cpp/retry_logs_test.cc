// Around a finished job: rerun only the ranks that failed (Job::retry,
// Results::retry, `pesc retry`), and follow a rank's output while it runs
// (RankLog, `pesc logs`), on the embedded farm and on real daemons.
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include "farm_harness.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::ScratchDir;
using testing::TestFarm;
using testing::eventually;
using testing::run_command;
using testing::write_script;

// Ranks 2 and 5 fail until `marker` exists; each rank prints its number and
// bytes that must come back as they were.
fs::path flaky_script(const fs::path& dir, const fs::path& marker) {
  return write_script(dir, "flaky.sh",
                      "printf 'rank %s \\001\\377\\n' \"$PESC_RANK\"\n"
                      "case $PESC_RANK in 2|5) [ -e " + marker.string() + " ] || exit 3;; esac\n");
}

std::string expected_output(int ranks) {
  std::string all;
  for (int rank = 0; rank < ranks; ++rank) all += "rank " + std::to_string(rank) + " \001\377\n";
  return all;
}

void touch(const fs::path& file) { std::ofstream(file) << "\n"; }

void expect_every_rank_once_in_order(const Results& results, int ranks) {
  ASSERT_EQ(results.size(), static_cast<size_t>(ranks));
  for (int rank = 0; rank < ranks; ++rank) {
    EXPECT_EQ(results[static_cast<size_t>(rank)].rank, rank);
    EXPECT_TRUE(results[static_cast<size_t>(rank)].ok()) << "rank " << rank;
  }
  EXPECT_EQ(results.output(), expected_output(ranks));
}

TEST(RetryTest, OnTheEmbeddedFarmOnlyTheFailedRanksRunAgainAndTheResultsStayOneSet) {
  ScratchDir scratch;
  const fs::path marker = scratch.path() / "fixed";
  Farm farm("shell", {.slots = 2});
  Results first = farm.map(flaky_script(scratch.path(), marker), 8).wait();
  EXPECT_EQ(first.failed_ranks(), (std::vector<int>{2, 5}));
  const std::string worker_of_rank_0 = first[0].worker;

  touch(marker);
  Job again = first.retry();
  Results retried = again.wait();
  expect_every_rank_once_in_order(retried, 8);
  EXPECT_EQ(retried[2].attempts, 2) << "a new attempt of the same job";
  EXPECT_EQ(retried[0].attempts, 1) << "a rank that succeeded did not run again";
  EXPECT_EQ(retried.job_id(), first.job_id());

  try {
    (void)retried.retry();
    ADD_FAILURE() << "nothing failed, so nothing is retried";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(error.what()).find("--ranks"), std::string::npos) << error.what();
  }
  try {
    (void)retried.retry({8});
    ADD_FAILURE() << "rank 8 is out of range";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kOutOfRange);
    EXPECT_NE(std::string(error.what()).find("0 to 7"), std::string::npos) << error.what();
  }
  // A rank named runs again although it had succeeded.
  Job named = farm.attach(first.job_id());
  EXPECT_EQ(named.retry({1}), (std::vector<int>{1}));
  Results once_more = named.wait();
  expect_every_rank_once_in_order(once_more, 8);
  EXPECT_EQ(once_more[1].attempts, 2);
}

TEST(RetryTest, ARunningJobIsNotRetried) {
  ScratchDir scratch;
  const fs::path release = scratch.path() / "release";
  fs::path script = write_script(scratch.path(), "slow.sh",
                                 "while [ ! -e " + release.string() + " ]; do sleep 0.05; done\nexit 1\n");
  Farm farm("shell", {.slots = 1});
  Job job = farm.map(script, 2);
  try {
    (void)job.retry();
    ADD_FAILURE() << "the job still runs";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(error.what()).find("still running"), std::string::npos) << error.what();
  }
  touch(release);
  EXPECT_EQ(job.wait().failed_ranks(), (std::vector<int>{0, 1}));
}

// A rank prints a line, then waits for `release` before its last line: what
// a follower reads before the release was read while the rank ran.
fs::path slow_printer(const fs::path& dir, const fs::path& release) {
  return write_script(dir, "slow.sh",
                      "echo \"first of $PESC_RANK\"\n"
                      "while [ ! -e " + release.string() + " ]; do sleep 0.05; done\n"
                      "echo \"last of $PESC_RANK\"\n");
}

// Reads `log` until its text holds `wanted` or it ends.
std::string read_until(RankLog& log, const std::string& wanted, std::string text = "") {
  while (text.find(wanted) == std::string::npos && !log.ended()) {
    if (auto piece = log.next(std::chrono::seconds(30))) text += *piece;
  }
  return text;
}

void follow_a_slow_rank(Farm& farm, const fs::path& dir) {
  const fs::path release = dir / "release";
  Job job = farm.map(slow_printer(dir, release), 2);
  RankLog log = job.log(1);
  std::string text = read_until(log, "first of 1\n");
  EXPECT_EQ(text, "first of 1\n") << "the line came while the rank ran";
  EXPECT_FALSE(log.ended());
  touch(release);
  text = read_until(log, "last of 1\n", text);
  while (!log.ended()) {
    if (auto piece = log.next(std::chrono::seconds(30))) text += *piece;
  }
  EXPECT_EQ(text, "first of 1\nlast of 1\n") << "each byte once";
  EXPECT_EQ(job.wait()[1].output, text);
  RankLog ended = job.log(0, false);
  EXPECT_EQ(ended.next(), "first of 0\nlast of 0\n");
  EXPECT_TRUE(ended.ended());
  EXPECT_THROW((void)job.log(2), Error);
}

TEST(LogsTest, OnTheEmbeddedFarmARanksLinesShowBeforeItEnds) {
  ScratchDir scratch;
  Farm farm("shell", {.slots = 2});
  follow_a_slow_rank(farm, scratch.path());
}

TEST(LogsTest, OnRealDaemonsARanksLinesShowBeforeItEnds) {
  ScratchDir scratch;
  TestFarm daemons(1, 2);
  Farm farm("shell", {.coordinator = daemons.address()});
  follow_a_slow_rank(farm, scratch.path());
}

TEST(CliRetryLogsTest, RetryRerunsTheFailedRanksAndLogsFollowsARank) {
  ScratchDir scratch;
  TestFarm farm(1, 2);
  const std::vector<std::string> env = {"PESC_COORDINATOR=" + farm.address()};
  const fs::path marker = scratch.path() / "fixed";
  CommandResult run = run_command({PESC_CLI_BINARY, "run", "--detach", "--repetitions", "8",
                                   flaky_script(scratch.path(), marker).string()},
                                  env);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string job = run.out.substr(0, run.out.find('\n'));
  CommandResult failed = run_command({PESC_CLI_BINARY, "wait", job}, env);
  EXPECT_EQ(failed.exit_code, 1) << failed.err;

  touch(marker);
  CommandResult retried = run_command({PESC_CLI_BINARY, "retry", job}, env);
  EXPECT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_EQ(retried.out, expected_output(8)) << "one set, in rank order";
  EXPECT_NE(retried.err.find("ranks 2, 5 run again"), std::string::npos) << retried.err;

  CommandResult nothing = run_command({PESC_CLI_BINARY, "retry", job}, env);
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_NE(nothing.err.find("nothing to retry"), std::string::npos) << nothing.err;
  CommandResult out_of_range = run_command({PESC_CLI_BINARY, "retry", job, "--ranks", "3,7-9"}, env);
  EXPECT_EQ(out_of_range.exit_code, 2);
  EXPECT_NE(out_of_range.err.find("no rank 8"), std::string::npos) << out_of_range.err;
  CommandResult bad_list = run_command({PESC_CLI_BINARY, "retry", job, "--ranks", "3,x"}, env);
  EXPECT_EQ(bad_list.exit_code, 2);
  EXPECT_NE(bad_list.err.find("e.g. 3,7-9"), std::string::npos) << bad_list.err;
  CommandResult unknown = run_command({PESC_CLI_BINARY, "retry", "nosuchjob"}, env);
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no job \"nosuchjob\""), std::string::npos) << unknown.err;
  CommandResult named = run_command({PESC_CLI_BINARY, "retry", job, "--ranks", "6-7"}, env);
  EXPECT_EQ(named.exit_code, 0) << named.err;
  EXPECT_EQ(named.out, expected_output(8));

  // logs: a slow rank's first line while it runs, all of it with -f.
  const fs::path release = scratch.path() / "release";
  CommandResult slow = run_command(
      {PESC_CLI_BINARY, "run", "--detach", "--repetitions", "1", slow_printer(scratch.path(), release).string()}, env);
  ASSERT_EQ(slow.exit_code, 0) << slow.err;
  const std::string slow_job = slow.out.substr(0, slow.out.find('\n'));
  auto followed = std::async(std::launch::async, [&] {
    return run_command({PESC_CLI_BINARY, "logs", slow_job, "0", "-f"}, env);
  });
  EXPECT_TRUE(eventually([&] { return run_command({PESC_CLI_BINARY, "logs", slow_job, "0"}, env).out == "first of 0\n"; },
                         std::chrono::seconds(30)))
      << "without -f: what the running rank printed so far";
  EXPECT_EQ(followed.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "-f goes on while the rank runs";
  touch(release);
  CommandResult all = followed.get();
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, "first of 0\nlast of 0\n");
  CommandResult no_rank = run_command({PESC_CLI_BINARY, "logs", slow_job, "4"}, env);
  EXPECT_EQ(no_rank.exit_code, 2);
  EXPECT_NE(no_rank.err.find("no rank 4"), std::string::npos) << no_rank.err;
}

}  // namespace
}  // namespace pesc
