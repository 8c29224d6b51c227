// Ranks cannot hurt the worker or each other: a real coordinator and a
// worker started as root with its production defaults (ranks as user pesc,
// in bubblewrap), and ranks that try.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "client/client.h"
#include "executor/sandbox.h"
#include "farm_harness.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::TestFarm;
using testing::read_all;
using testing::write_script;

class IsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "a worker runs ranks as another user only when it is root";
    if (!find_bwrap()) GTEST_SKIP() << "bubblewrap is not installed";
    daemons_ = std::make_unique<TestFarm>(0);
    // The ranks' user must be able to pass through to the worker's dir.
    ::chmod(daemons_->dir().c_str(), 0711);
    // A token file kept in the work dir, readable by all as a careless
    // operator might leave it.
    fs::create_directories(work_dir());
    std::ofstream(work_dir() / "token") << "worker-secret\n";
    ::chmod((work_dir() / "token").c_str(), 0644);
    daemons_->add_worker(2, {"--no-sandbox=false", "--run-as=pesc"});
    farm_ = std::make_unique<Farm>("shell", FarmOptions{.coordinator = daemons_->address()});
  }

  fs::path work_dir() const { return daemons_->dir() / "worker0"; }
  std::string worker_log() const { return read_all(daemons_->dir() / "worker0.log"); }

  ScratchDir scratch_;
  std::unique_ptr<TestFarm> daemons_;
  std::unique_ptr<Farm> farm_;
};

TEST_F(IsolationTest, WorkerSaysWhichIsolationIsActive) {
  ASSERT_TRUE(testing::eventually([&] { return worker_log().find("isolation:") != std::string::npos; }));
  EXPECT_THAT(worker_log(), HasSubstr("ranks run as user pesc"));
  EXPECT_THAT(worker_log(), HasSubstr("in bubblewrap"));
}

TEST_F(IsolationTest, RanksCannotReadTheWorkersStateOrAnotherSlotsOutput) {
  fs::path script = write_script(scratch_.path(), "snoop.sh",
                                 "id -un\n"
                                 "echo \"rank $PESC_RANK\" > \"$PESC_OUTPUT_DIR/secret.txt\"\n"
                                 "own_slot=$(echo \"$PESC_OUTPUT_DIR\" | sed 's/.*slot-\\([0-9]*\\).*/\\1/')\n"
                                 "other=$(echo \"$PESC_OUTPUT_DIR\" | sed \"s/slot-[0-9]*/slot-$((1 - own_slot))/\")\n"
                                 "sleep 1  # both ranks are running now\n"
                                 "cat \"$other/secret.txt\" 2>/dev/null || echo other-slot-hidden\n"
                                 "work=${PESC_OUTPUT_DIR%/runs/*}\n"
                                 "cat \"$work/worker-id\" 2>/dev/null || echo worker-id-hidden\n"
                                 "cat \"$work/token\" 2>/dev/null || echo token-hidden\n"
                                 "ls \"$work/cache\" 2>/dev/null || echo cache-hidden\n");
  Results results = farm_->map(script, 2).wait();
  ASSERT_EQ(results.size(), 2u);
  for (const RankResult& rank : results) {
    EXPECT_TRUE(rank.ok()) << rank.output << rank.error;
    EXPECT_EQ(rank.output, "pesc\nother-slot-hidden\nworker-id-hidden\ntoken-hidden\ncache-hidden\n");
    EXPECT_TRUE(rank.has_files) << "its own output_dir came back";
  }
}

TEST_F(IsolationTest, ShellMetacharactersInParametersReachTheRankLiterally) {
  fs::path script = write_script(scratch_.path(), "args.sh", "for word in \"$@\"; do printf '[%s]' \"$word\"; done\n");
  const std::string marker = (scratch_.path() / "pwned").string();
  Results results = farm_->map(script, 1, {"; rm -rf /", "$(touch " + marker + ")", "`id`"}).wait();
  ASSERT_TRUE(results[0].ok()) << results[0].output;
  EXPECT_THAT(results[0].output, HasSubstr("[--parameters][; rm -rf /][$(touch " + marker + ")][`id`]"));
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_TRUE(fs::exists("/usr/bin/sh"));
}

TEST_F(IsolationTest, RankOverItsMemoryLimitIsKilledAndReported) {
  fs::path script = write_script(scratch_.path(), "hog.sh",
                                 "exec /usr/bin/python3 -c \"import time; block = b'x' * (256 << 20); "
                                 "print('allocated', flush=True); time.sleep(5)\"\n");
  Results results = farm_->map(script, 1, {}, {.limits = {.memory_bytes = 64 << 20}}).wait();
  const RankResult& rank = results[0];
  EXPECT_FALSE(rank.ok());
  EXPECT_EQ(rank.limit_exceeded, "memory");
  EXPECT_THAT(rank.output, HasSubstr("pesc: killed: the rank went over the job's memory limit of 64 MiB"));
  EXPECT_EQ(rank.output.find("allocated"), std::string::npos);
}

TEST_F(IsolationTest, RankOverItsOutputLimitIsKilledAndReported) {
  fs::path script = write_script(scratch_.path(), "spill.sh",
                                 "for i in 1 2 3 4; do head -c 400000 /dev/zero > \"$PESC_OUTPUT_DIR/part$i\"; done\n"
                                 "sleep 5\n");
  Results results = farm_->map(script, 1, {}, {.limits = {.output_bytes = 1 << 20}}).wait();
  EXPECT_EQ(results[0].limit_exceeded, "output");
  EXPECT_THAT(results[0].output, HasSubstr("output limit of 1 MiB"));
}

TEST_F(IsolationTest, OpenFilesAndProcessesLimitsHold) {
  fs::path script = write_script(scratch_.path(), "limits.sh",
                                 "ulimit -n\n"
                                 "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done 2>/dev/null\n"
                                 "echo \"jobs $(jobs -p | wc -l)\"\n");
  Results results = farm_->map(script, 1, {}, {.limits = {.open_files = 32, .processes = 4}}).wait();
  EXPECT_THAT(results[0].output, ::testing::StartsWith("32\n"));
  EXPECT_THAT(results[0].output, ::testing::Not(HasSubstr("jobs 8"))) << "some forks were refused";
}

TEST_F(IsolationTest, NetworkOnlyWhenTheJobAsksForIt) {
  fs::path script = write_script(scratch_.path(), "net.sh", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '\n");
  EXPECT_EQ(farm_->map(script, 1).wait()[0].output, "lo\n");
  EXPECT_NE(farm_->map(script, 1, {}, {.network = true}).wait()[0].output, "lo\n");
}

TEST_F(IsolationTest, AnInterpreterTheRankUserCannotReachIsExplained) {
  fs::path private_dir = scratch_.path() / "private";  // 0700, as /root is
  fs::create_directories(private_dir);
  ::chmod(private_dir.c_str(), 0700);
  fs::copy_file("/bin/sh", private_dir / "sh");
  fs::path script = write_script(scratch_.path(), "hello.sh", "echo hello\n");
  Farm templated((private_dir / "sh").string() + " {entry}", FarmOptions{.coordinator = daemons_->address()});
  Job job = templated.map(script, 1);
  // A rank that cannot start here may start elsewhere: the worker is
  // quarantined with the reason, for `pesc workers` to show.
  auto client = Client::connect(daemons_->address(), {.token = daemons_->admin_token()});
  ASSERT_TRUE(client.ok()) << client.status();
  std::string reason;
  EXPECT_TRUE(testing::eventually([&] {
    auto workers = (*client)->workers();
    reason = workers.ok() && !workers->empty() ? workers->front().quarantined : "";
    return !reason.empty();
  }));
  EXPECT_THAT(reason, HasSubstr("cannot run as user pesc"));
  EXPECT_THAT(reason, HasSubstr("--interpreter"));
  job.cancel();
}

TEST_F(IsolationTest, ABuiltInDomainTheRankUserCannotRunIsNamedAtStart) {
  fs::path private_dir = scratch_.path() / "private";  // 0700, as /root is
  fs::create_directories(private_dir);
  ::chmod(private_dir.c_str(), 0700);
  fs::copy_file("/bin/sh", private_dir / "python3");
  daemons_->add_worker(1, {"--no-sandbox=false", "--run-as=pesc", "--interpreter",
                           "python=" + (private_dir / "python3").string()});
  auto client = Client::connect(daemons_->address(), {.token = daemons_->admin_token()});
  ASSERT_TRUE(client.ok()) << client.status();
  std::string why;
  EXPECT_TRUE(testing::eventually([&] {
    auto workers = (*client)->workers();
    for (const WorkerSummary& worker : workers.ok() ? *workers : std::vector<WorkerSummary>{}) {
      for (const UnavailableDomain& domain : worker.unavailable_domains) {
        if (worker.id == "worker1" && domain.domain == "python") why = domain.why;
      }
    }
    return !why.empty();
  }));
  EXPECT_THAT(why, HasSubstr("cannot run as user pesc"));
  EXPECT_THAT(why, HasSubstr(private_dir.string()));
}

// The runner protocol's pipes (fds 3 and 4) must survive the sandbox.
TEST_F(IsolationTest, WarmRunnersServeRanksInTheSandbox) {
  fs::path runner = write_script(scratch_.path(), "runner.sh",
                                 "while IFS='\t' read -r kind rank out checkpoint <&3; do\n"
                                 "  echo \"rank $rank as $(id -un) pid $$\" >> \"$out/output.txt\"\n"
                                 // Reopened by path, as R's runner does: the
                                 // pipe must belong to the rank's user.
                                 "  printf 'done\\t0\\n' > /proc/self/fd/4\n"
                                 "done\n");
  Results results = farm_->map(runner, 6, {}, {.warm_runner = true}).wait();
  ASSERT_EQ(results.size(), 6u);
  for (const RankResult& rank : results) {
    EXPECT_TRUE(rank.ok()) << rank.output << rank.error;
    EXPECT_THAT(rank.output, HasSubstr("rank " + std::to_string(rank.rank) + " as pesc pid"));
  }
}

// A slot keeps its sandbox from rank to rank: what a rank leaves in it (a
// process that left its group, files in /tmp and /dev/shm, a System V
// segment) is gone before the slot's next rank starts, and nothing else in
// it is writable.
TEST_F(IsolationTest, ARankFindsNothingTheSlotsLastRankLeft) {
  fs::path litter = write_script(scratch_.path(), "litter.sh",
                                 "echo left > /tmp/left; mkdir -p /tmp/d/e; chmod 000 /tmp/d\n"
                                 "echo left > /dev/shm/left\n"
                                 "ipcmk -M 4096 >/dev/null\n"
                                 "setsid sh -c 'sleep 60' </dev/null >/dev/null 2>&1 &\n"
                                 "touch /left 2>/dev/null && echo root-writable\n"
                                 "touch /dev/left 2>/dev/null && echo dev-writable\n"
                                 "echo done\n");
  for (const RankResult& rank : farm_->map(litter, 4).wait()) {
    EXPECT_TRUE(rank.ok()) << rank.output << rank.error;
    EXPECT_EQ(rank.output, "done\n");
  }
  fs::path look = write_script(scratch_.path(), "look.sh",
                               // (The test's work dir is below /tmp: the
                               // way to the slot's dirs is there too.)
                               "for f in /tmp/left /tmp/d /dev/shm/left; do [ -e $f ] && echo \"$f is left\"; done\n"
                               "ls -A /dev/shm\n"
                               "echo \"segments $(ipcs -m | grep -c '^0x')\"\n"
                               "echo \"sleeping $(cat /proc/[0-9]*/comm 2>/dev/null | grep -c sleep)\"\n");
  for (const RankResult& rank : farm_->map(look, 4).wait()) {
    EXPECT_TRUE(rank.ok()) << rank.output << rank.error;
    EXPECT_EQ(rank.output, "segments 0\nsleeping 0\n");
  }
}

// The slot's launcher is the sandbox's init: a rank cannot kill it, and
// the sandbox with it.
TEST_F(IsolationTest, ARankCannotKillItsSlotsLauncher) {
  fs::path killer = write_script(scratch_.path(), "killer.sh",
                                 "kill -KILL 1; kill -STOP 1; kill -TERM 1; sleep 0.2; echo survived\n");
  for (const RankResult& rank : farm_->map(killer, 4).wait()) {
    EXPECT_TRUE(rank.ok()) << rank.output << rank.error;
    EXPECT_EQ(rank.output, "survived\n");
  }
}

// The job's timeout reaches a rank through its slot's launcher: SIGTERM to
// its group, then SIGKILL for what ignores it.
TEST_F(IsolationTest, ATimeoutEndsARankInTheSlotsSandbox) {
  fs::path stubborn = write_script(scratch_.path(), "stubborn.sh",
                                   "trap '' TERM; echo started; sleep 30 & sleep 30; echo survived\n");
  const auto begin = std::chrono::steady_clock::now();
  const RankResult rank = farm_->map(stubborn, 1, {}, {.timeout = std::chrono::milliseconds(300)}).wait()[0];
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(20));
  EXPECT_TRUE(rank.timed_out);
  EXPECT_EQ(rank.signal, SIGKILL);
  EXPECT_THAT(rank.output, ::testing::StartsWith("started\n"));
  EXPECT_THAT(rank.output, ::testing::Not(HasSubstr("survived")));
}

// What exec refuses inside the slot's sandbox fails the job with the same
// message as outside, and the launcher serves the next rank.
TEST_F(IsolationTest, AProgramTheSandboxCannotExecuteFailsTheJob) {
  fs::path orphan = write_script(scratch_.path(), "orphan", "#!/nonexistent/sh\necho never\n");
  try {
    Farm("native", {.coordinator = daemons_->address()}).map(orphan, 1).wait();
    ADD_FAILURE() << "the job did not fail";
  } catch (const Error& failed) {
    EXPECT_THAT(failed.what(), HasSubstr("is the interpreter on its #! line installed?"));
  }
  fs::path plain = write_script(scratch_.path(), "plain.sh", "id -un\n");
  EXPECT_EQ(farm_->map(plain, 2).wait()[1].output, "pesc\n");
}

// A work dir and a coordinator's state dir under /opt, which the sandbox
// shows (read-only) for the software kept there, both left readable by all
// as a careless operator might: a rank still sees neither the other slot's
// output nor the state.
TEST(IsolationWhereverTheDirsLiveTest, RanksSeeNeitherAnotherSlotNorTheCoordinatorsStateUnderOpt) {
  if (::geteuid() != 0) GTEST_SKIP() << "a worker runs ranks as another user only when it is root";
  if (!find_bwrap()) GTEST_SKIP() << "bubblewrap is not installed";
  ScratchDir scratch;
  std::string pattern = "/opt/pesc-test-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path opt = pattern;
  struct RemovedAtEnd {
    fs::path dir;
    ~RemovedAtEnd() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } removed_at_end{opt};
  ::chmod(opt.c_str(), 0711);
  const char* tmpdir = std::getenv("TMPDIR");
  const std::string saved_tmpdir = tmpdir != nullptr ? tmpdir : "";
  ::setenv("TMPDIR", opt.c_str(), 1);  // the farm's dirs go where TMPDIR says
  auto farm = std::make_unique<TestFarm>(0);
  if (tmpdir != nullptr) {
    ::setenv("TMPDIR", saved_tmpdir.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  ::chmod(farm->dir().c_str(), 0711);
  const fs::path state = farm->dir() / "state";
  ::chmod(state.c_str(), 0755);
  ::chmod((state / "pesc.sqlite").c_str(), 0644);
  farm->add_worker(2, {"--no-sandbox=false", "--run-as=pesc"});

  fs::path script = write_script(scratch.path(), "snoop.sh",
                                 "echo \"rank $PESC_RANK\" > \"$PESC_OUTPUT_DIR/secret.txt\"\n"
                                 "own_slot=$(echo \"$PESC_OUTPUT_DIR\" | sed 's/.*slot-\\([0-9]*\\).*/\\1/')\n"
                                 "other=$(echo \"$PESC_OUTPUT_DIR\" | sed \"s/slot-[0-9]*/slot-$((1 - own_slot))/\")\n"
                                 "sleep 1  # both ranks are running now\n"
                                 "cat \"$other/secret.txt\" 2>/dev/null || echo other-slot-hidden\n"
                                 "echo \"in the work dir: $(ls -A \"${PESC_OUTPUT_DIR%/runs/*}\")\"\n"
                                 "echo \"in the state dir: $(ls -A \"$PESC_PARAMETER_0\")\"\n"
                                 "if cat \"$PESC_PARAMETER_0/pesc.sqlite\" >/dev/null 2>&1; then\n"
                                 "  echo state-read\n"
                                 "fi\n");
  Results results = Farm("shell", {.coordinator = farm->address()}).map(script, 2, {state.string()}).wait();
  ASSERT_EQ(results.size(), 2u);
  for (const RankResult& rank : results) {
    EXPECT_TRUE(rank.ok()) << rank.output << rank.error;
    EXPECT_EQ(rank.output, "other-slot-hidden\nin the work dir: runs\nin the state dir: \n") << rank.error;
  }
}

// A worker whose slot launcher dies (here: a stand-in that quits at its
// `cleanings`-th cleaning; 1 is the cleaning after its probe) runs every
// rank all the same, each in a sandbox, none failed for it.
void run_with_a_launcher_that_dies(int cleanings, bool bubblewrap_per_rank) {
  if (::geteuid() != 0) GTEST_SKIP() << "a worker runs ranks as another user only when it is root";
  if (!find_bwrap()) GTEST_SKIP() << "bubblewrap is not installed";
  ScratchDir scratch;
  TestFarm daemons(0);
  ::chmod(daemons.dir().c_str(), 0711);
  const fs::path bin = daemons.dir() / "bin";
  fs::create_directories(bin);
  ::chmod(bin.c_str(), 0755);
  fs::copy_file(testing::worker_binary(), bin / "pesc-worker");
  // Frames: a 4-byte little-endian length, then the type (launcher_protocol.h).
  write_script(bin, "pesc-rank-launcher",
               "#!/bin/sh\n"
               "[ \"$1\" = --probe ] && exit 0\n"
               "printf '\\001\\000\\000\\000R' >&3\n"
               "cleanings=0\n"
               "while [ \"$(head -c 5 <&3 | wc -c)\" = 5 ]; do\n"
               "  cleanings=$((cleanings + 1))\n"
               "  [ $cleanings -ge " + std::to_string(cleanings) + " ] && exit 1\n"
               "  printf '\\001\\000\\000\\000D' >&3\n"
               "done\n");
  ::chmod((bin / "pesc-rank-launcher").c_str(), 0755);
  daemons.add_worker(2, {"--no-sandbox=false", "--run-as=pesc"},
                     {"/bin/sh", "-c", "shift; exec \"$0\" \"$@\"", (bin / "pesc-worker").string()});
  fs::path script = write_script(scratch.path(), "who.sh", "echo \"$PESC_RANK $(id -un)\"\n");
  Farm farm("shell", FarmOptions{.coordinator = daemons.address()});
  const Results ranks = farm.map(script, 8).wait();
  ASSERT_EQ(ranks.size(), 8u);
  for (size_t rank = 0; rank < ranks.size(); ++rank) {
    EXPECT_TRUE(ranks[rank].ok()) << ranks[rank].error;
    EXPECT_EQ(ranks[rank].output, std::to_string(rank) + " pesc\n");
  }
  const std::string log = read_all(daemons.dir() / "worker0.log");
  const auto per_rank = HasSubstr("starts every rank in a bubblewrap of its own");
  if (bubblewrap_per_rank) {
    EXPECT_THAT(log, per_rank);
  } else {
    EXPECT_THAT(log, ::testing::Not(per_rank));
  }
  EXPECT_THAT(log, ::testing::Not(HasSubstr("quarantin")));
}

TEST(SlotLauncherFailureTest, ALauncherThatCannotCleanAfterItsProbeMeansABubblewrapPerRank) {
  run_with_a_launcher_that_dies(1, /*bubblewrap_per_rank=*/true);
}

TEST(SlotLauncherFailureTest, ALauncherThatDiesBetweenRanksIsReplaced) {
  run_with_a_launcher_that_dies(2, /*bubblewrap_per_rank=*/false);
}

}  // namespace
}  // namespace pesc
