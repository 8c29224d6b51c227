// Waits that last minutes still end when the user says so. Slow by design:
// the coordinator used to answer the keepalive pings of a client waiting
// idle with a GOAWAY ("too_many_pings") after a minute or two, and SIGTERM
// on `pesc run` then no longer cancelled the job; only a wait that long
// shows it (ctest label "long").
#include <sys/wait.h>

#include <csignal>
#include <filesystem>

#include "farm_harness.h"
#include "gtest/gtest.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::Daemon;
using testing::ScratchDir;
using testing::TestFarm;
using testing::eventually;
using testing::read_all;
using testing::run_command;
using testing::write_script;

constexpr auto kIdleWait = std::chrono::seconds(150);
constexpr auto kCancelWithin = std::chrono::seconds(5);

TEST(LongWaitTest, SigtermAfterA150SecondIdleWaitCancelsTheJobAndItsRankWithinFiveSeconds) {
  ScratchDir scratch;
  TestFarm farm(1, 1);
  const fs::path pids = scratch.path() / "pids";
  fs::create_directories(pids);
  const fs::path script =
      write_script(scratch.path(), "sleeper.sh", "echo $$ > \"$PESC_PARAMETER_0/$PESC_RANK\"\nsleep 600\n");
  const fs::path log = scratch.path() / "pesc-run.log";
  Daemon run({PESC_CLI_BINARY, "--coordinator", farm.address(), "run", "--repetitions", "1", script.string(), "--",
              pids.string()},
             log);
  // Written, not just created: the shell creates the file before echo fills it.
  ASSERT_TRUE(eventually([&] { return read_all(pids / "0").find('\n') != std::string::npos; },
                         std::chrono::seconds(30)))
      << read_all(log);
  const pid_t rank = static_cast<pid_t>(std::stol(read_all(pids / "0")));

  std::this_thread::sleep_for(kIdleWait);
  ASSERT_FALSE(testing::process_gone(run.pid())) << "pesc run ended during the wait: " << read_all(log);
  const auto sent = std::chrono::steady_clock::now();
  run.kill(SIGTERM);
  ASSERT_TRUE(eventually([&] { return testing::process_gone(run.pid()); }, kCancelWithin))
      << "pesc run still waits after SIGTERM: " << read_all(log);
  const int status = run.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << read_all(log);
  EXPECT_NE(read_all(log).find("cancelled job "), std::string::npos) << read_all(log);
  EXPECT_TRUE(eventually([&] { return testing::process_gone(rank); },
                         std::chrono::duration_cast<std::chrono::milliseconds>(
                             kCancelWithin - (std::chrono::steady_clock::now() - sent))))
      << "the rank still runs";
  CommandResult jobs = run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "jobs"});
  EXPECT_NE(jobs.out.find("cancelled"), std::string::npos) << jobs.out << jobs.err;
}

}  // namespace
}  // namespace pesc
