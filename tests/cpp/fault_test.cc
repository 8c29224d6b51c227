// Desktops that come and go: real daemons, real kills (SIGKILL, SIGSTOP).
// Whatever happens, every rank comes back exactly once with its bytes.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>

#include "farm_harness.h"
#include "rank_checks.h"
#include "gtest/gtest.h"
#include "client/client.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;
using testing::TestFarm;
using testing::eventually;
using testing::expect_each_rank_once;
using testing::read_all;
using testing::write_script;

// A short lease so a lost worker is noticed within the test's patience.
const std::vector<std::string> kShortLease = {"--worker-lease-ms", "1500"};

// Each rank sleeps a while, so kills land mid-rank.
constexpr const char* kSlowRank = "sleep 0.4\necho \"rank $PESC_RANK\"\n";

TEST(FaultTest, KilledWorkersRanksRunElsewhere) {
  ScratchDir scratch;
  TestFarm farm(2, 2, kShortLease);
  fs::path script = write_script(scratch.path(), "slow.sh", kSlowRank);
  Farm client("shell", {.coordinator = farm.address()});
  Job job = client.map(script, 24);
  for (int seen = 0; seen < 4;) seen += job.next(std::chrono::seconds(30)).has_value();
  farm.worker(0).kill(SIGKILL);
  farm.worker(0).wait();
  Results results = job.wait();
  expect_each_rank_once(results, 24);
  std::map<std::string, int> per_worker;
  for (const RankResult& rank : results) per_worker[rank.worker] += 1;
  EXPECT_GT(per_worker["worker1"], 12) << "the survivor took over the dead worker's share";
  // The report charges the attempts lost with worker0 to it, not to worker1,
  // which ran those ranks again.
  std::map<std::string, int> lost;
  for (const WorkerReport& worker : results.report().workers) lost[worker.worker] = worker.lost_attempts;
  EXPECT_GT(lost["worker0"], 0);
  EXPECT_EQ(lost["worker1"], 0);
}

TEST(FaultTest, RestartedWorkerKillsRanksOrphanedByItsDeath) {
  ScratchDir scratch;
  TestFarm farm(1, 2, kShortLease);
  fs::path pids = scratch.path() / "pids";
  fs::create_directories(pids);
  fs::path script = write_script(scratch.path(), "linger.sh",
                                 "echo $$ > \"$PESC_PARAMETER_0/$PESC_RANK\"\nsleep 120\n");
  Farm client("shell", {.coordinator = farm.address()});
  Job job = client.map(script, 2, {pids.string()});
  // Written, not just created: the shell creates the file before echo fills it.
  auto written = [&](const char* name) { return read_all(pids / name).find('\n') != std::string::npos; };
  ASSERT_TRUE(eventually([&] { return written("0") && written("1"); }));
  std::vector<pid_t> orphans = {static_cast<pid_t>(std::stol(read_all(pids / "0"))),
                                static_cast<pid_t>(std::stol(read_all(pids / "1")))};
  farm.restart_worker(0);  // SIGKILL: its ranks live on, orphaned
  for (pid_t pid : orphans) {
    EXPECT_TRUE(eventually([&] { return testing::process_gone(pid); })) << "orphaned rank " << pid << " survives";
  }
  job.cancel();
}

// Even when nobody restarts it: an unsandboxed rank does not run on, and
// spin, beside its own retry elsewhere.
TEST(FaultTest, AKilledWorkersRankDiesWithIt) {
  ScratchDir scratch;
  TestFarm farm(1, 1, kShortLease);
  const fs::path pid_file = scratch.path() / "pid";
  fs::path script = write_script(scratch.path(), "spin.sh",
                                 "echo $$ > \"$PESC_PARAMETER_0.tmp\" && mv \"$PESC_PARAMETER_0.tmp\" \"$PESC_PARAMETER_0\"\n"
                                 "while :; do :; done\n");
  Farm client("shell", {.coordinator = farm.address()});
  Job job = client.map(script, 1, {pid_file.string()});
  ASSERT_TRUE(eventually([&] { return !read_all(pid_file).empty(); }));
  const pid_t rank = static_cast<pid_t>(std::stol(read_all(pid_file)));
  farm.worker(0).kill(SIGKILL);
  farm.worker(0).wait();
  EXPECT_TRUE(eventually([&] { return testing::process_gone(rank); })) << "rank " << rank << " outlived its worker";
  job.cancel();
}

TEST(FaultTest, StoppedWorkerPastItsLeaseLosesItsRanksAndIsToldOnReturn) {
  ScratchDir scratch;
  TestFarm farm(2, 2, kShortLease);
  fs::path script = write_script(scratch.path(), "slow.sh", kSlowRank);
  Farm client("shell", {.coordinator = farm.address()});
  Job job = client.map(script, 16);
  for (int seen = 0; seen < 2;) seen += job.next(std::chrono::seconds(30)).has_value();
  farm.worker(0).kill(SIGSTOP);
  Results results = job.wait();  // finishes on worker1 while worker0 sleeps
  farm.worker(0).kill(SIGCONT);
  expect_each_rank_once(results, 16);
  // Back from its sleep, worker0 reconnects and is told its old attempts are
  // stale: its results never replace the accepted ones.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  Results again = Farm("shell", {.coordinator = farm.address()}).attach(results.job_id()).wait();
  for (size_t rank = 0; rank < again.size(); ++rank) EXPECT_EQ(again[rank].attempt, results[rank].attempt);
}

TEST(FaultTest, CrashingRankIsRetriedUpToMaxAttempts) {
  ScratchDir scratch;
  TestFarm farm(1, 2);
  fs::path counts = scratch.path() / "counts";
  fs::create_directories(counts);
  // Rank 1 crashes on its first two attempts; every other rank succeeds.
  fs::path script = write_script(scratch.path(), "flaky.sh",
                                 "f=\"$PESC_PARAMETER_0/$PESC_RANK\"\n"
                                 "echo x >> \"$f\"\n"
                                 "n=$(wc -l < \"$f\")\n"
                                 "if [ \"$PESC_RANK\" = 1 ] && [ \"$n\" -le 2 ]; then kill -SEGV $$; fi\n"
                                 "echo \"rank $PESC_RANK\"\n");
  Farm client("shell", {.coordinator = farm.address()});
  Results results = client.map(script, 3, {counts.string()}, {.max_attempts = 3}).wait();
  expect_each_rank_once(results, 3);
  EXPECT_EQ(results[1].attempts, 3);
  EXPECT_EQ(results[0].attempts, 1);

  fs::create_directories(scratch.path() / "fresh");
  Results no_retry = client.map(script, 2, {(scratch.path() / "fresh").string()}).wait();
  EXPECT_EQ(no_retry.failed_ranks(), std::vector<int>{1}) << "max_attempts defaults to 1: no retry";
  EXPECT_EQ(no_retry[1].signal, SIGSEGV);
}

TEST(FaultTest, RankPastItsTimeoutIsKilledAndReported) {
  ScratchDir scratch;
  Farm farm("shell", {.slots = 2});
  fs::path script = write_script(scratch.path(), "hang.sh",
                                 "echo started\nif [ \"$PESC_RANK\" = 1 ]; then sleep 60; fi\necho done\n");
  auto started = std::chrono::steady_clock::now();
  Results results = farm.map(script, 2, {}, {.timeout = std::chrono::milliseconds(700)}).wait();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20));
  EXPECT_TRUE(results[0].ok());
  EXPECT_FALSE(results[1].ok());
  EXPECT_TRUE(results[1].timed_out);
  EXPECT_NE(results[1].output.find("started\npesc: killed after the job's timeout of 0.7 s"), std::string::npos)
      << results[1].output;
}

TEST(FaultTest, TimeoutNoteIsNeverWrittenThroughALinkTheRankLeft) {
  ScratchDir scratch;
  Farm farm("shell", {.slots = 1});
  const fs::path victim = write_script(scratch.path(), "victim.txt", "untouched\n");
  fs::path script = write_script(scratch.path(), "plant.sh",
                                 "rm \"$PESC_OUTPUT_DIR/output.txt\"\n"
                                 "ln -s '" + victim.string() + "' \"$PESC_OUTPUT_DIR/output.txt\"\n"
                                 "sleep 60\n");
  Results results = farm.map(script, 1, {}, {.timeout = std::chrono::milliseconds(500)}).wait();
  EXPECT_TRUE(results[0].timed_out);
  EXPECT_EQ(read_all(victim), "untouched\n") << "the worker wrote its note through the rank's link";
}

TEST(FaultTest, MovedRankResumesFromItsCheckpoint) {
  ScratchDir scratch;
  TestFarm farm(1, 1, kShortLease);
  fs::path progress = scratch.path() / "progress";
  // Counts to 20, a step every 0.1 s, keeping its place in checkpoint_dir
  // (and telling the test, through a file outside the farm).
  fs::path script = write_script(scratch.path(), "count.sh",
                                 "c=\"$PESC_CHECKPOINT_DIR/at\"\n"
                                 "i=$(cat \"$c\" 2>/dev/null || echo 0)\n"
                                 "echo \"resumed at $i\"\n"
                                 "while [ \"$i\" -lt 20 ]; do\n"
                                 "  sleep 0.1; i=$((i+1)); echo \"$i\" > \"$c\"; echo \"$i\" > \"$PESC_PARAMETER_0\"\n"
                                 "done\n"
                                 "echo finished\n");
  Farm client("shell", {.coordinator = farm.address()});
  Job job = client.map(script, 1, {progress.string()},
                       {.checkpoint_interval = std::chrono::milliseconds(200)});
  ASSERT_TRUE(eventually([&] {
    std::string at = read_all(progress);
    return !at.empty() && std::stoi(at) >= 8;
  }));
  farm.worker(0).kill(SIGKILL);
  farm.worker(0).wait();
  farm.add_worker(1);
  Results results = job.wait();
  ASSERT_TRUE(results.ok()) << results.output();
  EXPECT_EQ(results[0].worker, "worker1");
  const std::string& out = results[0].output;
  ASSERT_EQ(out.rfind("resumed at ", 0), 0u) << out;
  EXPECT_GE(std::stoi(out.substr(11)), 5) << "the second attempt starts from the checkpoint, not from zero: " << out;
  EXPECT_NE(out.find("finished"), std::string::npos);
}

TEST(FaultTest, WorkerThatCannotRunADomainSaysSoAndGetsNoneOfItsJobs) {
  ScratchDir scratch;
  TestFarm farm(0);
  farm.add_worker(2, {"--interpreter", "python=/nonexistent/python3"});
  fs::path script = write_script(scratch.path(), "hello.py", "import os\nprint('rank', os.environ['PESC_RANK'])\n");
  Farm client("python", {.coordinator = farm.address()});
  Job job = client.map(script, 10);
  // With no worker able to run it, the job waits and says why.
  ASSERT_TRUE(eventually([&] {
    job.next(std::chrono::milliseconds(100));
    return job.progress().waiting.find("no worker can run the python domain") != std::string::npos;
  })) << job.progress().waiting;
  EXPECT_NE(job.progress().waiting.find("/nonexistent/python3"), std::string::npos) << job.progress().waiting;

  farm.add_worker(1, {"--interpreter", "python=/usr/bin/python3"});
  Results results = job.wait();
  EXPECT_TRUE(results.ok()) << results.output();
  for (const RankResult& rank : results) {
    EXPECT_EQ(rank.worker, "worker1");
    EXPECT_EQ(rank.output, "rank " + std::to_string(rank.rank) + "\n");
  }
  auto client_library = Client::connect(farm.address(), {.token = farm.admin_token()});
  ASSERT_TRUE(client_library.ok());
  auto workers = (*client_library)->workers();
  ASSERT_TRUE(workers.ok());
  for (const WorkerSummary& worker : *workers) {
    EXPECT_EQ(worker.quarantined, "") << "a domain it cannot run is no fault of the worker's ranks";
    std::string python_unavailable;
    for (const UnavailableDomain& domain : worker.unavailable_domains) {
      if (domain.domain == "python") python_unavailable = domain.why;
    }
    if (worker.id == "worker0") {
      EXPECT_NE(python_unavailable.find("/nonexistent/python3"), std::string::npos) << python_unavailable;
    } else {
      EXPECT_EQ(python_unavailable, "");
    }
  }
}

TEST(FaultTest, ACancelledRankKeepsTheOutputItHadWritten) {
  ScratchDir scratch;
  TestFarm farm(1, 1);
  fs::path script = write_script(scratch.path(), "partial.sh",
                                 "echo \"step 1 of rank $PESC_RANK\"\n"
                                 "echo partial > \"$PESC_OUTPUT_DIR/partial.txt\"\n"
                                 "touch \"$PESC_PARAMETER_0/started\"\n"
                                 "sleep 120\n");
  Job job = Farm("shell", {.coordinator = farm.address()}).map(script, 1, {scratch.path().string()});
  ASSERT_TRUE(eventually([&] { return fs::exists(scratch.path() / "started"); }, std::chrono::seconds(30)));
  job.cancel();
  // The worker stops the rank, then sends what it had written.
  std::optional<Results> results;
  EXPECT_TRUE(eventually(
      [&] {
        results = Farm("shell", {.coordinator = farm.address()}).attach(job.id()).wait();
        return (*results)[0].output.find("step 1 of rank 0") != std::string::npos;
      },
      std::chrono::seconds(15)))
      << (*results)[0].output;
  EXPECT_EQ((*results)[0].status, RankStatus::kCancelled);
  EXPECT_EQ(results->read_file(0, "partial.txt"), "partial\n");
}

}  // namespace
}  // namespace pesc
