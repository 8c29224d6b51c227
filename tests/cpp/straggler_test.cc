// Stragglers on real daemons: a rank that runs far longer than its peers is
// also started on an idle worker, the first success is its one result and
// the other attempt is stopped; --no-duplicates never does that.
#include <algorithm>
#include <filesystem>
#include <set>

#include "farm_harness.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // the farm harness's

// Notes every start in DIR/starts-RANK. Rank 3's first start (claimed by
// creating DIR/first-3 with its pid) sleeps parameter 1 seconds and says
// "slow"; every other start takes 0.2 s and says "fast".
constexpr const char* kOneStraggler =
    "echo x >> \"$PESC_PARAMETER_0/starts-$PESC_RANK\"\n"
    "if [ \"$PESC_RANK\" = 3 ] && mkdir \"$PESC_PARAMETER_0/first-3\" 2>/dev/null; then\n"
    "  echo $$ > \"$PESC_PARAMETER_0/first-3/pid\"\n"
    "  sleep \"$PESC_PARAMETER_1\"; echo \"rank $PESC_RANK slow\"\n"
    "else\n"
    "  sleep 0.2; echo \"rank $PESC_RANK fast\"\n"
    "fi\n";

int starts_of(const fs::path& dir, int rank) {
  std::string text = read_all(dir / ("starts-" + std::to_string(rank)));
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

TEST(StragglerTest, DuplicateOnAnIdleWorkerOvertakesTheStragglerAndCountsOnce) {
  ScratchDir scratch;
  TestFarm farm(2, 1);
  fs::path script = write_script(scratch.path(), "straggle.sh", kOneStraggler);
  Farm client("shell", {.coordinator = farm.address()});
  auto started = std::chrono::steady_clock::now();
  Results results = client.map(script, 6, {scratch.path().string(), "60"}).wait();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  ASSERT_EQ(results.size(), 6u);
  std::set<int64_t> attempts;
  for (const RankResult& rank : results) {
    EXPECT_TRUE(rank.ok()) << rank.output;
    EXPECT_EQ(rank.output, "rank " + std::to_string(rank.rank) + " fast\n");
    attempts.insert(rank.attempt);
  }
  EXPECT_EQ(attempts.size(), 6u);
  EXPECT_EQ(results[3].attempts, 2) << "the straggler and its duplicate";
  EXPECT_EQ(starts_of(scratch.path(), 3), 2);
  pid_t straggler = static_cast<pid_t>(std::stol(read_all(scratch.path() / "first-3" / "pid")));
  EXPECT_TRUE(eventually([&] { return process_gone(straggler); })) << "the losing attempt is stopped";
}

TEST(StragglerTest, NoDuplicatesNeverRunsARankTwice) {
  ScratchDir scratch;
  TestFarm farm(2, 1);
  fs::path script = write_script(scratch.path(), "straggle.sh", kOneStraggler);
  Farm client("shell", {.coordinator = farm.address()});
  Results results = client.map(script, 6, {scratch.path().string(), "3"}, {.no_duplicates = true}).wait();
  ASSERT_TRUE(results.ok()) << results.output();
  EXPECT_EQ(results[3].output, "rank 3 slow\n");
  for (const RankResult& rank : results) {
    EXPECT_EQ(rank.attempts, 1) << "rank " << rank.rank;
    EXPECT_EQ(starts_of(scratch.path(), rank.rank), 1) << "rank " << rank.rank;
  }
}

}  // namespace
}  // namespace pesc
