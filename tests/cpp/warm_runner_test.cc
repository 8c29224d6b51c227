// The runner protocol end to end: a warm runner written in plain sh serves
// rank after rank on the embedded farm and on real daemons.
#include <filesystem>
#include <fstream>
#include <set>

#include "farm_harness.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;
using testing::TestFarm;
using testing::write_script;

// Answers each "rank" line on fd 3 with "done<TAB>status" on fd 4, printing
// its own pid into the rank's output.txt. Rank 3 makes it die mid-rank the
// first time (a marker file remembers), and rank 5 fails.
constexpr const char* kShellRunner =
    "while IFS='\t' read -r kind rank out checkpoint <&3; do\n"
    "  if [ \"$rank\" = 3 ] && [ ! -e \"$PESC_PARAMETER_0/died\" ]; then touch \"$PESC_PARAMETER_0/died\"; exit 9; fi\n"
    "  echo \"rank $rank pid $$\" >> \"$out/output.txt\"\n"
    "  if [ \"$rank\" = 5 ]; then printf 'done\\t1\\n' >&4; else printf 'done\\t0\\n' >&4; fi\n"
    "done\n";

void expect_served_warm(const Results& results) {
  ASSERT_EQ(results.size(), 8u);
  std::set<std::string> pids;
  for (const RankResult& rank : results) {
    const std::string prefix = "rank " + std::to_string(rank.rank) + " pid ";
    ASSERT_EQ(rank.output.rfind(prefix, 0), 0u) << rank.output;
    pids.insert(rank.output.substr(prefix.size()));
    EXPECT_EQ(rank.ok(), rank.rank != 5) << rank.rank;
  }
  // Two slots, one runner each, plus the one that replaced the runner that
  // died: far fewer interpreters than ranks.
  EXPECT_LE(pids.size(), 3u);
  EXPECT_EQ(results[3].attempts, 2) << "the rank whose interpreter died ran again";
}

TEST(WarmRunnerTest, ServesManyRanksPerInterpreterOnTheEmbeddedFarm) {
  ScratchDir scratch;
  fs::path runner = write_script(scratch.path(), "runner.sh", kShellRunner);
  Farm farm("shell", {.slots = 2});
  expect_served_warm(farm.map(runner, 8, {scratch.path().string()}, {.warm_runner = true}).wait());
}

TEST(WarmRunnerTest, ServesManyRanksPerInterpreterOverDaemons) {
  ScratchDir scratch;
  TestFarm daemons(1, 2);
  fs::path runner = write_script(scratch.path(), "runner.sh", kShellRunner);
  Farm farm("shell", {.coordinator = daemons.address()});
  expect_served_warm(farm.map(runner, 8, {scratch.path().string()}, {.warm_runner = true}).wait());
}

TEST(WarmRunnerTest, ARankKilledAtItsTimeoutRanFromWhenItsRunnerTookIt) {
  ScratchDir scratch;
  fs::path runner = write_script(scratch.path(), "slow_runner.sh",
                                 "while read -r line <&3; do sleep 30; done\n");
  Farm farm("shell", {.slots = 1});
  const auto before = std::chrono::system_clock::now();
  Results results = farm.map(runner, 1, {}, {.timeout = std::chrono::milliseconds(300), .warm_runner = true}).wait();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].timed_out);
  // Its user's fair share is charged from here, not from 1970.
  EXPECT_GE(results[0].start, before - std::chrono::seconds(1));
  EXPECT_LT(results[0].end - results[0].start, std::chrono::seconds(10));
}

TEST(WarmRunnerTest, CancelEndsTheWarmInterpreters) {
  ScratchDir scratch;
  fs::path runner = write_script(scratch.path(), "slow_runner.sh",
                                 "echo $$ >> \"$PESC_PARAMETER_0/pids\"\n"
                                 "while IFS='\t' read -r kind rank out checkpoint <&3; do\n"
                                 "  sleep 30; printf 'done\\t0\\n' >&4\n"
                                 "done\n");
  Farm farm("shell", {.slots = 2});
  Job job = farm.map(runner, 4, {scratch.path().string()}, {.warm_runner = true});
  ASSERT_TRUE(testing::eventually([&] { return fs::exists(scratch.path() / "pids"); }));
  job.cancel();
  job.wait();
  std::ifstream pids(scratch.path() / "pids");
  for (pid_t pid; pids >> pid;) {
    EXPECT_TRUE(testing::eventually([&] { return testing::process_gone(pid); })) << "runner " << pid << " lives on";
  }
}

}  // namespace
}  // namespace pesc
