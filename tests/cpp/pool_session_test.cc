// A Farm whose pool is a batch system (FarmOptions::pool), against stand-ins
// for sbatch, squeue and scancel (tests/data/slurm_stand_ins, first on
// PATH) that start the real pesc-worker pilots on this machine: ranks run on the pilots, the
// session's listen side wants its token, a batch system that refuses
// every submit fails the job's wait with its words, and closing the session
// cancels its pilots and removes its directory. The real Slurm is
// tests/slurm/test_slurm_session.py's.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "client/client.h"
#include "farm_harness.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;

using testing::eventually;
using testing::read_all;
using testing::ScratchDir;

std::vector<std::string> lines_of(const fs::path& path) { return absl::StrSplit(read_all(path), '\n', absl::SkipEmpty()); }

// A shell script at `path`.
void write_script(const fs::path& path, const std::string& text) {
  testing::write_script(path.parent_path(), path.filename().string(), "#!/bin/sh\n" + text);
}

class PoolSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_path_ = std::getenv("PATH");
    ::setenv("PATH", (std::string(PESC_TEST_DATA_DIR "/slurm_stand_ins:") + old_path_).c_str(), 1);
    ::setenv("PESC_BATCH_DIR", dir_.path().c_str(), 1);
  }
  void TearDown() override {
    ::setenv("PATH", old_path_.c_str(), 1);
    ::unsetenv("PESC_BATCH_DIR");
  }

  FarmOptions options() const {
    FarmOptions options;
    options.state_dir = path("sessions");
    PoolOptions pool;
    pool.partition = "debug";
    pool.max_workers = 1;
    pool.slots_per_worker = 2;
    pool.worker = testing::worker_binary().string();
    pool.worker_args = {"--run-as="};  // as root, ranks run as the test's user
    pool.listen = "127.0.0.1:0";
    options.pool = pool;
    return options;
  }

  fs::path rank_script() const {
    const fs::path script = path("rank.sh");
    write_script(script, "echo \"rank $PESC_RANK in job ${SLURM_JOB_ID:-none}\"\n");
    return script;
  }

  fs::path path(const std::string& name) const { return dir_.path() / name; }

  ScratchDir dir_;
  std::string old_path_;
};

TEST(PoolOptionsTest, ReadByName) {
  PoolOptions pool = pool_options_from({{"partition", {"short"}},
                                        {"time_limit", {"10m"}},
                                        {"idle_timeout", {"90"}},
                                        {"max_workers", {"3"}},
                                        {"submit_args", {"-A", "lab42"}}});
  EXPECT_EQ(pool.batch_system, "slurm");
  EXPECT_EQ(pool.partition, "short");
  EXPECT_EQ(pool.time_limit, std::chrono::minutes(10));
  EXPECT_EQ(pool.idle_timeout, std::chrono::seconds(90));
  EXPECT_EQ(pool.max_workers, 3);
  EXPECT_EQ(pool.submit_args, (std::vector<std::string>{"-A", "lab42"}));
  try {
    pool_options_from({{"time_limit", {"soon"}}});
    FAIL() << "an unreadable duration was taken";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(error.what(), "time_limit")) << error.what();
  }
  EXPECT_THROW(pool_options_from({{"partitions", {"x"}}}), Error);
}

TEST_F(PoolSessionTest, RanksRunOnPilotsAndClosingCancelsThem) {
  Farm farm("shell", options());
  const std::string description = farm.describe();
  EXPECT_TRUE(absl::StartsWith(description, "session coordinator at 127.0.0.1:")) << description;
  Results results = farm.map(rank_script(), 6).wait();
  for (const RankResult& rank : results) {
    EXPECT_TRUE(rank.ok()) << rank.rank << ": " << rank.error << rank.output;
    EXPECT_EQ(rank.output, "rank " + std::to_string(rank.rank) + " in job 101\n");
    EXPECT_TRUE(absl::StartsWith(rank.worker, "pilot-session-")) << rank.worker;
  }
  const std::string submitted = lines_of(path("sbatch.args")).at(0);
  EXPECT_TRUE(absl::StrContains(submitted, "--partition=debug")) << submitted;

  // The session directory, private to this user, holds what pilots read.
  std::vector<fs::path> sessions;
  for (const auto& entry : fs::directory_iterator(path("sessions"))) sessions.push_back(entry.path());
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(fs::status(sessions[0]).permissions() & fs::perms::all, fs::perms::owner_all);

  // Its listen side wants the session's token.
  const std::string address = description.substr(std::string("session coordinator at ").size(),
                                                 description.find(',') - std::string("session coordinator at ").size());
  auto ca = read_file(sessions[0] / "tls" / "ca.pem");
  ASSERT_TRUE(ca.ok()) << ca.status();
  for (const std::string token : {"", "not-the-token"}) {
    auto client = Client::connect(address, {.token = token, .tls_ca = *ca});
    absl::Status refused = client.ok() ? client.value()->jobs().status() : client.status();
    EXPECT_EQ(refused.code(), absl::StatusCode::kUnauthenticated) << "token \"" << token << "\": " << refused;
  }

  farm.close();
  EXPECT_EQ(lines_of(path("scancel.args")), (std::vector<std::string>{"101"}));
  // [s]: the pattern does not match the shell that runs pgrep.
  const std::string pilot = "pgrep -f 'pilot-[s]" + sessions[0].filename().string().substr(1) + "' >/dev/null";
  EXPECT_TRUE(eventually([&] { return std::system(pilot.c_str()) != 0; }, std::chrono::seconds(20)))
      << "the pilot still runs";
  EXPECT_TRUE(fs::is_empty(path("sessions"))) << "the session's directory stays";
}

TEST_F(PoolSessionTest, ABatchSystemThatRefusesEverySubmitFailsTheWaitWithItsWords) {
  testing::write_script(dir_.path(), "refuse", "");
  Farm farm("shell", options());
  Job job = farm.map(rank_script(), 2);
  try {
    job.wait();
    FAIL() << "wait() returned for ranks no worker can run";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StrContains(error.what(), "invalid partition specified: nosuch")) << error.what();
    EXPECT_TRUE(absl::StrContains(error.what(), "no worker is connected")) << error.what();
  }
}

TEST_F(PoolSessionTest, TheSessionEndsWithTheLastFarmJobAndResultsOfIt) {
  std::optional<Results> results;
  {
    Farm farm("shell", options());
    results = farm.map(rank_script(), 2).wait();
  }
  EXPECT_TRUE(read_all(path("scancel.args")).empty()) << "the results still need the farm";
  results.reset();
  EXPECT_EQ(lines_of(path("scancel.args")), (std::vector<std::string>{"101"}));
  EXPECT_TRUE(fs::is_empty(path("sessions")));
}

TEST_F(PoolSessionTest, LocalSlotsRunRanksWhileThePoolCannotSubmit) {
  testing::write_script(dir_.path(), "refuse", "");
  FarmOptions local = options();
  local.pool->local_slots = 2;
  Farm farm("shell", local);
  EXPECT_TRUE(absl::StrContains(farm.describe(), "and 2 local slots")) << farm.describe();
  Results results = farm.map(rank_script(), 3).wait();
  for (const RankResult& rank : results) {
    EXPECT_TRUE(rank.ok()) << rank.rank << ": " << rank.error;
    EXPECT_EQ(rank.worker, "local");
  }
}

TEST_F(PoolSessionTest, APoolAndACoordinatorAreOneTooMany) {
  FarmOptions both = options();
  both.coordinator = "127.0.0.1:1";
  try {
    Farm farm("shell", both);
    FAIL() << "a farm took a pool and a coordinator";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace pesc
