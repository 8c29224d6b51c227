// GPUs on real daemons: one worker whose nvidia-smi (a script standing in
// for the driver) reports two GPUs of capability 8.6, one without any.
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "farm_harness.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"
#include "worker/gpu_inventory.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::ScratchDir;
using testing::TestFarm;
using testing::eventually;
using testing::run_command;
using testing::write_script;

constexpr const char* kTwoGpus =
    "#!/bin/sh\n"
    "echo '0, NVIDIA RTX A4000, 16376, 8.6'\n"
    "echo '1, NVIDIA RTX A4000, 16376, 8.6'\n";

// Prints what the rank sees of the GPUs, then holds them a while.
constexpr const char* kGpuRank = "echo \"gpu=${CUDA_VISIBLE_DEVICES-unset}\"\nsleep 0.5\n";

class GpuTest : public ::testing::Test {
 protected:
  GpuTest() : farm_(0) {
    fs::path fake_bin = scratch_.path() / "bin";
    fs::create_directories(fake_bin);
    write_script(fake_bin, "nvidia-smi", kTwoGpus);
    const std::string path = std::getenv("PATH");
    ::setenv("PATH", (fake_bin.string() + ":" + path).c_str(), 1);
    farm_.add_worker(4);  // worker0: finds the fake nvidia-smi
    ::setenv("PATH", path.c_str(), 1);
    farm_.add_worker(4);  // worker1: no GPUs
    script_ = write_script(scratch_.path(), "gpu.sh", kGpuRank);
  }

  CommandResult pesc(std::vector<std::string> arguments) {
    arguments.insert(arguments.begin(), {PESC_CLI_BINARY, "--coordinator", farm_.address()});
    return run_command(arguments, {});
  }

  ScratchDir scratch_;
  TestFarm farm_;
  fs::path script_;
};

// Ranks at once, at most, among these.
int most_at_once(const Results& results) {
  int most = 0;
  for (const RankResult& a : results) {
    int together = 0;
    for (const RankResult& b : results) together += b.start <= a.start && a.start < b.end;
    most = std::max(most, together);
  }
  return most;
}

// No two ranks held one GPU at once, and at most two ranks ran at once.
void expect_gpus_never_shared(const Results& results) {
  EXPECT_LE(most_at_once(results), 2) << "two GPUs: two one-GPU ranks at once, though worker0 has 4 slots";
  for (const RankResult& a : results) {
    for (const RankResult& b : results) {
      if (a.rank != b.rank && a.output == b.output) {
        EXPECT_TRUE(a.end <= b.start || b.end <= a.start) << "ranks " << a.rank << " and " << b.rank
                                                          << " shared " << a.output;
      }
    }
  }
}

TEST(NvidiaSmiTest, ParsesItsCsvAndRefusesWhatItCannotRead) {
  auto gpus = parse_nvidia_smi("0, NVIDIA GeForce RTX 3090, 24576, 8.6\n1, Tesla T4, 15360, 7.5\n");
  ASSERT_TRUE(gpus.ok()) << gpus.status();
  ASSERT_EQ(gpus->size(), 2u);
  EXPECT_EQ((*gpus)[0].name(), "NVIDIA GeForce RTX 3090");
  EXPECT_EQ((*gpus)[1].index(), 1);
  EXPECT_EQ((*gpus)[1].memory_bytes(), int64_t{15360} << 20);
  EXPECT_DOUBLE_EQ((*gpus)[1].compute_capability(), 7.5);
  EXPECT_FALSE(parse_nvidia_smi("0, An old GPU, 1024, [N/A]\n").ok()) << "a driver too old to say its capability";
  EXPECT_TRUE(parse_nvidia_smi("").value().empty());
}

TEST_F(GpuTest, WorkersReportTheirGpus) {
  ASSERT_TRUE(eventually([&] {
    const std::string out = pesc({"workers"}).out;
    return out.find("worker0") != std::string::npos && out.find("worker1") != std::string::npos;
  }));
  const std::string out = pesc({"workers"}).out;
  EXPECT_NE(out.find("GPUs: 0 NVIDIA RTX A4000 (capability 8.6, 16376 MiB), 1 NVIDIA RTX A4000"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("GPUs:"), out.rfind("GPUs:")) << "worker1 has none: " << out;
}

TEST_F(GpuTest, GpuRanksRunOnlyOnFreeGpusOfTheirCapability) {
  Farm client("shell", {.coordinator = farm_.address()});
  Results results = client.map(script_, 6, {}, {.gpus = 1, .min_capability = 8.0}).wait();
  ASSERT_EQ(results.size(), 6u);
  std::set<std::string> gpus_seen;
  for (const RankResult& rank : results) {
    EXPECT_TRUE(rank.ok()) << rank.output << rank.error;
    EXPECT_EQ(rank.worker, "worker0") << "worker1 has no GPU";
    EXPECT_TRUE(rank.output == "gpu=0\n" || rank.output == "gpu=1\n") << rank.output;
    gpus_seen.insert(rank.output);
  }
  EXPECT_EQ(gpus_seen.size(), 2u) << "both GPUs used";
  expect_gpus_never_shared(results);
}

TEST_F(GpuTest, ARestartedCoordinatorGivesHeldGpusToNoOneElse) {
  const fs::path started = scratch_.path() / "started";
  fs::create_directories(started);
  fs::path script = write_script(scratch_.path(), "hold.sh",
                                 "touch \"$PESC_PARAMETER_0/$PESC_RANK\"\n"
                                 "echo \"gpu=$CUDA_VISIBLE_DEVICES\"\nsleep 2\n");
  Farm client("shell", {.coordinator = farm_.address()});
  const std::string job_id = client.map(script, 4, {started.string()}, {.gpus = 1}).id();
  auto ranks_started = [&] {
    return std::distance(fs::directory_iterator(started), fs::directory_iterator());
  };
  ASSERT_TRUE(eventually([&] { return ranks_started() == 2; }));
  farm_.restart_coordinator();  // SIGKILL: the two ranks keep their GPUs on worker0
  std::optional<Results> results;
  ASSERT_TRUE(eventually([&] {  // the new coordinator may still be opening its doors
    try {
      results = Farm("shell", {.coordinator = farm_.address()}).attach(job_id).wait();
    } catch (const Error&) {
    }
    return results.has_value();
  }));
  for (const RankResult& rank : *results) EXPECT_TRUE(rank.ok()) << rank.output << rank.error;
  expect_gpus_never_shared(*results);
}

TEST_F(GpuTest, RanksWithoutGpusSeeNoneOnAGpuHost) {
  Farm client("shell", {.coordinator = farm_.address()});
  Results results = client.map(script_, 12).wait();
  std::map<std::string, std::set<std::string>> seen_on;
  for (const RankResult& rank : results) {
    EXPECT_TRUE(rank.ok()) << rank.output << rank.error;
    seen_on[rank.worker].insert(rank.output);
  }
  EXPECT_EQ(seen_on["worker0"], std::set<std::string>{"gpu=\n"}) << "set, and empty";
  EXPECT_EQ(seen_on["worker1"], std::set<std::string>{"gpu=unset\n"}) << "a host without GPUs leaves it alone";
}

TEST_F(GpuTest, AJobNoWorkerHasGpusForWaitsAndSaysWhy) {
  ASSERT_TRUE(eventually([&] { return pesc({"workers"}).out.find("GPUs:") != std::string::npos; }));
  // `timeout` ends the wait with SIGTERM, as a user's Ctrl-C would.
  CommandResult run = run_command({"/usr/bin/timeout", "--preserve-status", "6", PESC_CLI_BINARY, "--coordinator",
                                   farm_.address(), "run", "--domain", "shell", "--repetitions", "2", "--gpus", "1",
                                   "--min-capability", "9.0", script_.string()},
                                  {});
  EXPECT_EQ(run.exit_code, 130) << run.err;
  EXPECT_NE(run.err.find("no connected worker has 1 GPU of compute capability 9.0 or more (GPU capabilities: "
                         "worker0: 8.6 8.6; worker1: none)"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(run.out, "") << "no rank ran";

  CommandResult no_gpus = pesc({"run", "--domain", "shell", "--min-capability", "8.0", script_.string()});
  EXPECT_NE(no_gpus.exit_code, 0);
  EXPECT_NE(no_gpus.err.find("needs GPUs per rank"), std::string::npos) << no_gpus.err;
}

}  // namespace
}  // namespace pesc
