// The coordinator's state dir under real faults: a full disk (a small
// tmpfs, as root), an empty or damaged database, two coordinators on one
// dir, a backup restored elsewhere, and files others could read.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "client/client.h"
#include "farm_harness.h"
#include "rank_checks.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using testing::Daemon;
using testing::ScratchDir;
using testing::SmallTmpfs;
using testing::TestFarm;
using testing::eventually;
using testing::expect_each_rank_once;
using testing::read_all;
using testing::write_script;

constexpr const char* kRank = "sleep 0.05\necho \"rank $PESC_RANK\"\n";

// Whether every rank of the job came back, none more than `patience` after
// the one before.
bool finishes(Job& job, std::chrono::seconds patience) {
  while (job.next(patience).has_value()) {
  }
  return job.done();
}

bool exits_with_message(Daemon& daemon, const fs::path& log, const std::string& words) {
  if (!eventually([&] { return !daemon.running(); })) return false;
  return read_all(log).find(words) != std::string::npos;
}

fs::perms mode_of(const fs::path& path) { return fs::status(path).permissions(); }
constexpr fs::perms kOwnerFile = fs::perms::owner_read | fs::perms::owner_write;

TEST(StateFaultTest, AFullStateDiskRefusesJobsLosesNoResultAndResumesByItself) {
  ScratchDir scratch;
  TestFarm farm(0, 2);
  farm.coordinator().kill(SIGKILL);
  farm.coordinator().wait();
  SmallTmpfs disk(farm.dir() / "state", "32m");
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a tmpfs";
  farm.restart_coordinator();  // its state now on the small disk
  farm.add_worker(2);
  farm.add_worker(2);
  fs::path script = write_script(scratch.path(), "rank.sh", kRank);
  Farm client("shell", {.coordinator = farm.address()});
  Job job = client.map(script, 300);
  for (int seen = 0; seen < 30;) seen += job.next(std::chrono::seconds(30)).has_value();

  disk.fill();
  try {
    client.map(script, 10);
    ADD_FAILURE() << "a job was taken while the state disk is full";
  } catch (const Error& refused) {
    EXPECT_EQ(refused.code(), ErrorCode::kResourceExhausted) << refused.what();
    EXPECT_NE(std::string(refused.what()).find("state disk is full"), std::string::npos) << refused.what();
    EXPECT_NE(std::string(refused.what()).find((farm.dir() / "state").string()), std::string::npos) << refused.what();
  }
  EXPECT_TRUE(eventually([&] { return read_all(farm.dir() / "coordinator.log").find("will retry") != std::string::npos; }))
      << "the coordinator never said its store failed";
  std::this_thread::sleep_for(std::chrono::seconds(2));

  disk.free_space();
  ASSERT_TRUE(finishes(job, std::chrono::seconds(20))) << "the job stalled after space returned";
  Results results = job.wait();
  expect_each_rank_once(results, 300);
  EXPECT_NE(read_all(farm.dir() / "coordinator.log").find("takes writes again"), std::string::npos);

  // A cancel acknowledged before a kill -9 stays; so does every result.
  const fs::path started = scratch.path() / "started";
  fs::create_directories(started);
  Job slow = client.map(write_script(scratch.path(), "slow.sh", "touch \"$PESC_PARAMETER_0/$PESC_RANK\"\nsleep 60\n"),
                        4, {started.string()});
  ASSERT_TRUE(eventually([&] { return !fs::is_empty(started); }));
  slow.cancel();
  farm.restart_coordinator();
  Farm again("shell", {.coordinator = farm.address()});
  Results cancelled = again.attach(slow.id()).wait();
  ASSERT_EQ(cancelled.size(), 4u);
  for (const RankResult& rank : cancelled) EXPECT_EQ(rank.status, RankStatus::kCancelled) << "rank " << rank.rank;
  Results kept = again.attach(results.job_id()).wait();
  expect_each_rank_once(kept, 300);
  for (size_t rank = 0; rank < kept.size(); ++rank) EXPECT_EQ(kept[rank].attempt, results[rank].attempt);
}

// Output too large to travel inline goes as a blob, which a full state disk
// cannot take: the worker keeps it and sends it again, and is not blamed.
TEST(StateFaultTest, ALargeOutputWaitsOutAFullStateDiskAndItsWorkerIsNotBlamed) {
  ScratchDir scratch;
  TestFarm farm(0);
  farm.coordinator().kill(SIGKILL);
  farm.coordinator().wait();
  SmallTmpfs disk(farm.dir() / "state", "32m");
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a tmpfs";
  farm.restart_coordinator();
  farm.add_worker(1);
  const fs::path signals = scratch.path() / "signals";
  fs::create_directories(signals);
  constexpr size_t kBytes = 3'000'000;
  fs::path script = write_script(scratch.path(), "big.sh",
                                 "touch \"$PESC_PARAMETER_0/started\"\n"
                                 "while [ ! -e \"$PESC_PARAMETER_0/go\" ]; do sleep 0.05; done\n"
                                 "head -c " + std::to_string(kBytes) + " /dev/zero | tr '\\0' x\n");
  Farm client("shell", {.coordinator = farm.address()});
  Job job = client.map(script, 1, {signals.string()});
  ASSERT_TRUE(eventually([&] { return fs::exists(signals / "started"); }));
  disk.fill();
  write_script(signals, "go", "");
  EXPECT_TRUE(eventually([&] { return read_all(farm.dir() / "worker0.log").find("trying again") != std::string::npos; },
                         std::chrono::seconds(20)))
      << read_all(farm.dir() / "worker0.log");
  disk.free_space();
  Results results = job.wait();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, RankStatus::kSucceeded) << results[0].error;
  EXPECT_EQ(results[0].attempts, 1) << "the rank ran once; its output waited";
  EXPECT_EQ(results[0].output, std::string(kBytes, 'x'));
  auto admin = Client::connect(farm.address(), {.token = farm.admin_token()});
  ASSERT_TRUE(admin.ok()) << admin.status();
  auto workers = (*admin)->workers();
  ASSERT_TRUE(workers.ok()) << workers.status();
  for (const WorkerSummary& worker : *workers) EXPECT_EQ(worker.quarantined, "") << worker.id;
}

TEST(StateFaultTest, AnEmptyDatabaseBesideTokensIsRefusedWithHowToRestore) {
  TestFarm farm(0);
  farm.coordinator().kill(SIGTERM);
  farm.coordinator().wait();
  const fs::path state = farm.dir() / "state";
  fs::resize_file(state / "pesc.sqlite", 0);
  for (const char* log : {"pesc.sqlite-wal", "pesc.sqlite-shm"}) fs::remove(state / log);
  const fs::path log = farm.dir() / "again.log";
  Daemon again({PESC_COORDINATOR_BINARY, "--listen", "127.0.0.1:0", "--state-dir", state.string()}, log);
  EXPECT_TRUE(exits_with_message(again, log, "is empty or missing")) << read_all(log);
  EXPECT_NE(read_all(log).find("pesc-coordinator backup"), std::string::npos) << read_all(log);
}

TEST(StateFaultTest, ADamagedDatabaseIsRefusedAtStart) {
  TestFarm farm(0);
  farm.coordinator().kill(SIGTERM);  // a clean stop puts every page in the file
  farm.coordinator().wait();
  const fs::path database = farm.dir() / "state" / "pesc.sqlite";
  {
    std::fstream bytes(database, std::ios::in | std::ios::out | std::ios::binary);
    const std::string garbage(4096, '\x5A');
    for (std::streamoff page = 4096; page < static_cast<std::streamoff>(fs::file_size(database)); page += 4096) {
      bytes.seekp(page);
      bytes.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    }
  }
  const fs::path log = farm.dir() / "again.log";
  Daemon again({PESC_COORDINATOR_BINARY, "--listen", "127.0.0.1:0", "--state-dir", (farm.dir() / "state").string()},
               log);
  EXPECT_TRUE(exits_with_message(again, log, "is damaged")) << read_all(log);
}

TEST(StateFaultTest, ASecondCoordinatorOnTheSameStateDirExitsNamingTheFirst) {
  TestFarm farm(0);
  const fs::path log = farm.dir() / "second.log";
  Daemon second({PESC_COORDINATOR_BINARY, "--listen", "127.0.0.1:0", "--state-dir", (farm.dir() / "state").string()},
                log);
  EXPECT_TRUE(exits_with_message(second, log, "is in use by pesc-coordinator pid " +
                                                  std::to_string(farm.coordinator().pid())))
      << read_all(log);
  EXPECT_TRUE(farm.coordinator().running());
}

TEST(StateFaultTest, ABackupTakenWhileRunningRestoresTheSameJobsAndResults) {
  ScratchDir scratch;
  TestFarm farm(1, 2);
  Farm client("shell", {.coordinator = farm.address()});
  Results before = client.map(write_script(scratch.path(), "rank.sh", kRank), 6).wait();
  const fs::path backup = scratch.path() / "backup";
  testing::CommandResult backed_up = testing::run_command(
      {PESC_COORDINATOR_BINARY, "backup", backup.string(), "--state-dir", (farm.dir() / "state").string()});
  ASSERT_EQ(backed_up.exit_code, 0) << backed_up.err;
  EXPECT_TRUE(farm.coordinator().running()) << "backed up beside the running coordinator";

  const fs::path log = scratch.path() / "restored.log";
  Daemon restored({PESC_COORDINATOR_BINARY, "--listen", "127.0.0.1:0", "--state-dir", backup.string()}, log);
  ASSERT_TRUE(eventually([&] { return fs::exists(backup / "coordinator.address"); })) << read_all(log);
  const std::string address(absl::StripAsciiWhitespace(read_all(backup / "coordinator.address")));
  Results after = Farm("shell", {.coordinator = address}).attach(before.job_id()).wait();
  expect_each_rank_once(after, 6);
  for (size_t rank = 0; rank < after.size(); ++rank) EXPECT_EQ(after[rank].attempt, before[rank].attempt);
}

TEST(StateFaultTest, StateFilesAndIssuedTokensAreTheOwnersAlone) {
  ScratchDir scratch;
  TestFarm farm(1, 2);
  Farm client("shell", {.coordinator = farm.address()});
  client.map(write_script(scratch.path(), "rank.sh", kRank), 2).wait();
  const fs::path state = farm.dir() / "state";
  EXPECT_EQ(mode_of(state), fs::perms::owner_all);
  for (const char* name : {"pesc.sqlite", "pesc.sqlite-wal", "pesc.sqlite-shm", "admin.token"}) {
    EXPECT_EQ(mode_of(state / name), kOwnerFile) << name;
  }
  EXPECT_EQ(mode_of(state / "blobs"), fs::perms::owner_all);
  int blobs = 0;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(state / "blobs")) {
    if (!entry.is_regular_file()) continue;
    EXPECT_EQ(mode_of(entry.path()), kOwnerFile) << entry.path();
    blobs += 1;
  }
  EXPECT_GT(blobs, 0);

  const fs::path token = scratch.path() / "ana.token";
  testing::CommandResult added = testing::run_command(
      {"/bin/sh", "-c", "umask 022; exec \"$0\" --coordinator \"$1\" user add ana > \"$2\"", PESC_CLI_BINARY,
       farm.address(), token.string()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(mode_of(token), kOwnerFile);
  EXPECT_FALSE(read_all(token).empty());
}

}  // namespace
}  // namespace pesc
