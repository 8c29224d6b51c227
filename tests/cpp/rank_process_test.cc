#include "executor/rank_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/files.h"
#include "executor/warm_runner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pesc {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

class RankProcessTest : public ::testing::Test {
 public:  // for the helpers below the fixture
  void SetUp() override {
    absl::StatusOr<TempDirectory> root = TempDirectory::create("rank_process_test");
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = std::make_unique<TempDirectory>(*std::move(root));
  }

  RankLaunch shell(const std::string& script) const {
    RankLaunch launch;
    launch.argv = {"/bin/sh", "-c", script};
    launch.working_dir = root_->path();
    launch.output_file = output_file();
    return launch;
  }

  std::filesystem::path output_file() const { return root_->path() / "output.txt"; }

  std::string output() const {
    absl::StatusOr<std::string> text = read_file(output_file());
    return text.ok() ? *text : "<" + std::string(text.status().message()) + ">";
  }

  std::unique_ptr<RankProcess> start(const RankLaunch& launch) const {
    absl::StatusOr<std::unique_ptr<RankProcess>> process = RankProcess::start(launch);
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? *std::move(process) : nullptr;
  }

  // Polls until `text` shows up in output.txt, so a test acts only once
  // the rank has reached that point.
  bool await_output(const std::string& text) const {
    for (auto deadline = std::chrono::steady_clock::now() + 10s;
         std::chrono::steady_clock::now() < deadline;) {
      if (output().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  std::string write_file(const std::string& name, const std::string& text, mode_t mode) const {
    std::filesystem::path path = root_->path() / name;
    EXPECT_TRUE(write_file_atomically(path, text).ok());
    ::chmod(path.c_str(), mode);
    return path.string();
  }

  std::unique_ptr<TempDirectory> root_;
};

// Orphaned grandchildren become our children, so the test can reap them and
// "no process left in the group" does not depend on how quickly pid 1 reaps.
class Subreaper {
 public:
  Subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~Subreaper() {
    ::prctl(PR_SET_CHILD_SUBREAPER, 0);
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }

  // True once nothing, not even a zombie, is left in the group.
  bool group_gone(pid_t group) {
    for (auto deadline = std::chrono::steady_clock::now() + 10s;
         std::chrono::steady_clock::now() < deadline;) {
      while (::waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      if (::kill(-group, 0) == -1 && errno == ESRCH) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
};

TEST_F(RankProcessTest, SuccessReportsTimes) {
  const int64_t before = now_unix_ms();
  std::unique_ptr<RankProcess> process = start(shell("exit 0"));
  ASSERT_NE(process, nullptr);
  RankExit exit = process->wait();
  EXPECT_EQ(exit.exit_code, 0);
  EXPECT_EQ(exit.signal, 0);
  EXPECT_GE(exit.start_unix_ms, before);
  EXPECT_GE(exit.end_unix_ms, exit.start_unix_ms);
  EXPECT_LE(exit.end_unix_ms, now_unix_ms());
}

TEST_F(RankProcessTest, NonZeroExitCode) {
  std::unique_ptr<RankProcess> process = start(shell("exit 7"));
  ASSERT_NE(process, nullptr);
  RankExit exit = process->wait();
  EXPECT_EQ(exit.exit_code, 7);
  EXPECT_EQ(exit.signal, 0);
}

TEST_F(RankProcessTest, KilledBySignal) {
  std::unique_ptr<RankProcess> process = start(shell("kill -SEGV $$"));
  ASSERT_NE(process, nullptr);
  RankExit exit = process->wait();
  EXPECT_EQ(exit.signal, SIGSEGV);
  EXPECT_EQ(exit.exit_code, 128 + SIGSEGV);
}

TEST_F(RankProcessTest, WaitTwiceGivesTheSameExit) {
  std::unique_ptr<RankProcess> process = start(shell("exit 3"));
  ASSERT_NE(process, nullptr);
  RankExit first = process->wait();
  RankExit second = process->wait();
  EXPECT_EQ(second.exit_code, 3);
  EXPECT_EQ(second.end_unix_ms, first.end_unix_ms);
}

TEST_F(RankProcessTest, StdoutAndStderrInterleaveInOneFile) {
  std::unique_ptr<RankProcess> process =
      start(shell("echo one; echo two >&2; echo three; printf four >&2; echo ' five'"));
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->wait().exit_code, 0);
  EXPECT_EQ(output(), "one\ntwo\nthree\nfour five\n");
}

TEST_F(RankProcessTest, OutputFileIsAppendedTo) {
  ASSERT_TRUE(write_file_atomically(output_file(), "earlier attempt\n").ok());
  std::unique_ptr<RankProcess> process = start(shell("echo this attempt"));
  ASSERT_NE(process, nullptr);
  process->wait();
  EXPECT_EQ(output(), "earlier attempt\nthis attempt\n");
}

TEST_F(RankProcessTest, StdinIsDevNull) {
  std::unique_ptr<RankProcess> process = start(shell("cat; echo done"));
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->wait().exit_code, 0);
  EXPECT_EQ(output(), "done\n");
}

TEST_F(RankProcessTest, RunsInWorkingDirectory) {
  std::filesystem::path dir = root_->path() / "app dir";
  std::filesystem::create_directory(dir);
  RankLaunch launch = shell("pwd");
  launch.working_dir = dir;
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  process->wait();
  EXPECT_EQ(output(), dir.string() + "\n");
}

TEST_F(RankProcessTest, EnvironmentIsInheritedAndOverridden) {
  ::setenv("RANK_PROCESS_TEST_KEPT", "kept", 1);
  ::setenv("RANK_PROCESS_TEST_REPLACED", "old", 1);
  RankLaunch launch = shell(
      "echo \"$RANK_PROCESS_TEST_KEPT|$RANK_PROCESS_TEST_REPLACED|$RANK_PROCESS_TEST_NEW\"; "
      "env | grep -c '^RANK_PROCESS_TEST_REPLACED='");
  launch.environment = {{"RANK_PROCESS_TEST_REPLACED", "first"},
                        {"RANK_PROCESS_TEST_NEW", "a b \"c\" ünï"},
                        {"RANK_PROCESS_TEST_REPLACED", "new"}};
  std::unique_ptr<RankProcess> process = start(launch);
  ::unsetenv("RANK_PROCESS_TEST_KEPT");
  ::unsetenv("RANK_PROCESS_TEST_REPLACED");
  ASSERT_NE(process, nullptr);
  process->wait();
  EXPECT_EQ(output(), "kept|new|a b \"c\" ünï\n1\n");
}

TEST_F(RankProcessTest, RunsInItsOwnProcessGroup) {
  std::unique_ptr<RankProcess> process = start(shell("sleep 100"));
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(::getpgid(process->pid()), process->pid());
  EXPECT_NE(::getpgid(process->pid()), ::getpgrp());
  process->terminate(0ms);
  EXPECT_EQ(process->wait().signal, SIGKILL);
}

TEST_F(RankProcessTest, SignalsIgnoredByTheWorkerAreResetForTheRank) {
  // Python ignores SIGPIPE; a shell cannot undo a signal ignored on entry.
  struct sigaction previous;
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &previous);
  std::unique_ptr<RankProcess> process = start(shell("kill -PIPE $$; exit 0"));
  ::sigaction(SIGPIPE, &previous, nullptr);
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->wait().signal, SIGPIPE);
}

TEST_F(RankProcessTest, TerminateEndsTheWholeGroup) {
  Subreaper subreaper;
  std::unique_ptr<RankProcess> process = start(shell("sleep 100 & echo started; sleep 100"));
  ASSERT_NE(process, nullptr);
  ASSERT_TRUE(await_output("started"));
  const pid_t group = process->pid();
  auto begin = std::chrono::steady_clock::now();
  process->terminate(5s);
  RankExit exit = process->wait();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 4s);
  EXPECT_EQ(exit.signal, SIGTERM);
  EXPECT_EQ(exit.exit_code, 128 + SIGTERM);
  EXPECT_TRUE(subreaper.group_gone(group));
}

TEST_F(RankProcessTest, WaitKillsLeftoversOfAFinishedRank) {
  Subreaper subreaper;
  std::unique_ptr<RankProcess> process = start(shell("trap '' TERM; sleep 100 & echo started"));
  ASSERT_NE(process, nullptr);
  const pid_t group = process->pid();
  EXPECT_EQ(process->wait().exit_code, 0);
  EXPECT_TRUE(subreaper.group_gone(group));
}

TEST_F(RankProcessTest, TermIgnoringRankIsKilledAfterGrace) {
  Subreaper subreaper;
  std::unique_ptr<RankProcess> process = start(shell("trap '' TERM; echo ready; sleep 100; echo survived"));
  ASSERT_NE(process, nullptr);
  ASSERT_TRUE(await_output("ready"));
  const pid_t group = process->pid();
  auto begin = std::chrono::steady_clock::now();
  process->terminate(300ms);
  RankExit exit = process->wait();
  auto elapsed = std::chrono::steady_clock::now() - begin;
  EXPECT_EQ(exit.signal, SIGKILL);
  EXPECT_EQ(exit.exit_code, 128 + SIGKILL);
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 5s);
  EXPECT_EQ(output(), "ready\n");
  EXPECT_TRUE(subreaper.group_gone(group));
}

TEST_F(RankProcessTest, LaterTerminateCanShortenTheGrace) {
  std::unique_ptr<RankProcess> process = start(shell("trap '' TERM; echo ready; sleep 100"));
  ASSERT_NE(process, nullptr);
  ASSERT_TRUE(await_output("ready"));
  auto begin = std::chrono::steady_clock::now();
  process->terminate(60s);
  process->terminate(100ms);
  EXPECT_EQ(process->wait().signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 10s);
}

TEST_F(RankProcessTest, TerminateFromAnotherThreadWhileWaiting) {
  std::unique_ptr<RankProcess> process = start(shell("sleep 100"));
  ASSERT_NE(process, nullptr);
  RankExit exit;
  std::thread waiter([&] { exit = process->wait(); });
  std::this_thread::sleep_for(50ms);
  process->terminate(1s);
  waiter.join();
  EXPECT_EQ(exit.signal, SIGTERM);
  process->terminate(1s);  // after the end: nothing to signal
}

TEST_F(RankProcessTest, DestructorKillsARunningGroup) {
  Subreaper subreaper;
  std::unique_ptr<RankProcess> process = start(shell("sleep 100 & echo started; sleep 100"));
  ASSERT_NE(process, nullptr);
  ASSERT_TRUE(await_output("started"));
  const pid_t group = process->pid();
  process.reset();
  EXPECT_TRUE(subreaper.group_gone(group));
}

TEST_F(RankProcessTest, DestructorAfterTerminateDoesNotWaitForTheGrace) {
  std::unique_ptr<RankProcess> process = start(shell("trap '' TERM; echo ready; sleep 100"));
  ASSERT_NE(process, nullptr);
  ASSERT_TRUE(await_output("ready"));
  auto begin = std::chrono::steady_clock::now();
  process->terminate(60s);
  process.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 10s);
}

TEST_F(RankProcessTest, MissingProgramFailsToStart) {
  RankLaunch launch = shell("");
  launch.argv = {"/nonexistent/program", "x"};
  absl::StatusOr<std::unique_ptr<RankProcess>> process = RankProcess::start(launch);
  ASSERT_FALSE(process.ok());
  EXPECT_EQ(process.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(process.status().message(), HasSubstr("/nonexistent/program"));
}

TEST_F(RankProcessTest, NonExecutableFileFailsToStart) {
  RankLaunch launch = shell("");
  launch.argv = {write_file("data.sh", "#!/bin/sh\necho hi\n", 0644)};
  absl::StatusOr<std::unique_ptr<RankProcess>> process = RankProcess::start(launch);
  ASSERT_FALSE(process.ok());
  EXPECT_THAT(process.status().message(), HasSubstr("not executable"));
}

TEST_F(RankProcessTest, FailedExecIsReportedNotRun) {
  RankLaunch launch = shell("");
  launch.argv = {write_file("garbage", "this is not a program\n", 0755)};
  absl::StatusOr<std::unique_ptr<RankProcess>> process = RankProcess::start(launch);
  ASSERT_FALSE(process.ok());
  EXPECT_THAT(process.status().message(), HasSubstr("no #! line"));
  EXPECT_TRUE(is_job_fault(process.status())) << "any worker would refuse it: the job must change";

  launch.argv = {write_file("orphan.sh", "#!/nonexistent/interpreter\n", 0755)};
  process = RankProcess::start(launch);
  ASSERT_FALSE(process.ok());
  EXPECT_THAT(process.status().message(), HasSubstr("#! line"));
  EXPECT_TRUE(is_job_fault(process.status()));
}

TEST_F(RankProcessTest, ArgumentsTooLongForTheKernelAreTheJobsFault) {
  RankLaunch launch = shell("echo never");
  // Each word fits in one argument; together they pass ARG_MAX.
  const size_t words = static_cast<size_t>(::sysconf(_SC_ARG_MAX)) / (100 * 1024) + 2;
  for (size_t i = 0; i < words; ++i) launch.argv.push_back(std::string(100 * 1024, 'x'));
  absl::StatusOr<std::unique_ptr<RankProcess>> process = RankProcess::start(launch);
  ASSERT_FALSE(process.ok());
  EXPECT_THAT(process.status().message(), HasSubstr("exceed what the kernel passes"));
  EXPECT_TRUE(is_job_fault(process.status()));
}

TEST_F(RankProcessTest, BadLaunchesAreRejected) {
  RankLaunch relative = shell("");
  relative.argv = {"sh", "-c", "true"};
  EXPECT_EQ(RankProcess::start(relative).status().code(), absl::StatusCode::kInvalidArgument);

  RankLaunch missing_dir = shell("true");
  missing_dir.working_dir = root_->path() / "missing";
  EXPECT_FALSE(RankProcess::start(missing_dir).ok());

  RankLaunch bad_output = shell("true");
  bad_output.output_file = root_->path() / "missing" / "output.txt";
  EXPECT_FALSE(RankProcess::start(bad_output).ok());

  RankLaunch nul_argument = shell(std::string("echo a\0b", 8));
  EXPECT_EQ(RankProcess::start(nul_argument).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RankProcessTest, CpuAndMemoryArePlausible) {
  RankLaunch launch = shell("");
  launch.argv = {"/usr/bin/python3", "-c",
                 "import time\n"
                 "block = b'x' * (64 << 20)\n"
                 "begin = time.process_time()\n"
                 "while time.process_time() - begin < 0.4: pass\n"};
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  RankExit exit = process->wait();
  EXPECT_EQ(exit.exit_code, 0) << output();
  EXPECT_GE(exit.cpu_ms, 350);
  EXPECT_LE(exit.cpu_ms, exit.end_unix_ms - exit.start_unix_ms + 50);
  EXPECT_GE(exit.max_rss_kb, 64 * 1024);
  EXPECT_LT(exit.max_rss_kb, 1024 * 1024);
}

// --- Isolation: argv only, limits, another user, bubblewrap.

TEST_F(RankProcessTest, ShellMetacharactersInArgumentsArriveLiterally) {
  RankLaunch launch = shell("printf '[%s]' \"$@\"");
  launch.argv.insert(launch.argv.end(), {"sh", "; rm -rf /", "$(id)", "`id`", "a b"});
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->wait().exit_code, 0);
  EXPECT_EQ(output(), "[; rm -rf /][$(id)][`id`][a b]");
}

TEST_F(RankProcessTest, RunsInASessionOfItsOwn) {
  RankLaunch launch = shell("ps -o sid= -p $$");
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  process->wait();
  EXPECT_EQ(std::stoi(output()), process->pid()) << "no terminal of the worker's is reachable";
}

TEST_F(RankProcessTest, WorkerTokensAreNotInTheRanksEnvironment) {
  ::setenv("PESC_TOKEN", "secret-token", 1);
  std::unique_ptr<RankProcess> process = start(shell("echo \"token=$PESC_TOKEN\""));
  ::unsetenv("PESC_TOKEN");
  ASSERT_NE(process, nullptr);
  process->wait();
  EXPECT_EQ(output(), "token=\n");
}

TEST_F(RankProcessTest, OpenFilesLimitHolds) {
  RankLaunch launch = shell("ulimit -n; exec 3</dev/null 4</dev/null 5</dev/null 6</dev/null 7</dev/null 8</dev/null");
  launch.limits.open_files = 6;
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  RankExit exit = process->wait();
  EXPECT_NE(exit.exit_code, 0) << "opening a seventh descriptor must fail";
  EXPECT_THAT(output(), ::testing::StartsWith("6\n"));
  EXPECT_EQ(exit.limit_exceeded, "") << "a refused open() kills nothing";
}

TEST_F(RankProcessTest, CpuTimeLimitKillsAndIsReported) {
  RankLaunch launch = shell("while :; do :; done");
  launch.limits.cpu_ms = 500;
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  RankExit exit = process->wait();
  EXPECT_EQ(exit.signal, SIGXCPU);
  EXPECT_EQ(exit.limit_exceeded, "cpu");
}

// Runs `script` with a 1 MiB output limit on its working directory.
RankExit with_output_limit(const RankProcessTest& test, const std::string& script) {
  RankLaunch launch = test.shell(script);
  launch.output_dir = launch.working_dir;
  launch.limits.output_bytes = 1 << 20;
  std::unique_ptr<RankProcess> process = test.start(launch);
  return process ? process->wait() : RankExit{};
}

TEST_F(RankProcessTest, OneFileOverTheOutputLimitIsKilled) {
  RankExit exit = with_output_limit(*this, "head -c 3000000 /dev/zero > big; echo survived");
  EXPECT_EQ(exit.limit_exceeded, "output");
  EXPECT_LE(std::filesystem::file_size(root_->path() / "big"), (1u << 20) + 1) << "RLIMIT_FSIZE stopped it";
}

TEST_F(RankProcessTest, ManySmallFilesOverTheOutputLimitAreKilled) {
  RankExit exit = with_output_limit(*this, "for i in 1 2 3 4 5 6; do head -c 300000 /dev/zero > f$i; done; sleep 5; "
                                           "echo survived");
  EXPECT_EQ(exit.limit_exceeded, "output");
  EXPECT_LT(exit.end_unix_ms - exit.start_unix_ms, 4000);
  EXPECT_EQ(output().find("survived"), std::string::npos);
}

RankLaunch memory_hog(RankLaunch launch) {
  launch.argv = {"/usr/bin/python3", "-c",
                 "import time\nblock = b'x' * (256 << 20)\nprint('allocated', flush=True)\ntime.sleep(5)\n"};
  launch.limits.memory_bytes = 64 << 20;
  return launch;
}

TEST_F(RankProcessTest, MemoryLimitWithoutCgroupsIsWatched) {
  std::unique_ptr<RankProcess> process = start(memory_hog(shell("")));
  ASSERT_NE(process, nullptr);
  RankExit exit = process->wait();
  EXPECT_EQ(exit.limit_exceeded, "memory");
  EXPECT_EQ(exit.signal, SIGKILL);
  EXPECT_LT(exit.end_unix_ms - exit.start_unix_ms, 4000);
}

class CgroupRankTest : public RankProcessTest {
 protected:
  void SetUp() override {
    RankProcessTest::SetUp();
    auto tree = CgroupTree::open();
    if (!tree.ok()) GTEST_SKIP() << "no writable cgroups here: " << tree.status();
    cgroups_ = *tree;
  }
  std::shared_ptr<CgroupTree> cgroups_;
};

TEST_F(CgroupRankTest, MemoryLimitKillsByCgroupAndIsReported) {
  RankLaunch launch = memory_hog(shell(""));
  launch.cgroups = cgroups_;
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  RankExit exit = process->wait();
  EXPECT_EQ(exit.limit_exceeded, "memory") << output();
  EXPECT_EQ(output().find("allocated"), std::string::npos);
}

TEST_F(CgroupRankTest, ProcessLimitRefusesForks) {
  RankLaunch launch = shell("for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait; echo finished");
  launch.limits.processes = 4;
  launch.cgroups = cgroups_;
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  process->wait();
  EXPECT_THAT(output(), HasSubstr("fork")) << "sh says it cannot fork";
}

TEST_F(CgroupRankTest, ProcessesThatLeaveTheGroupDieWithTheRank) {
  Subreaper subreaper;
  RankLaunch launch = shell("setsid sh -c 'echo $$ > escaped; exec sleep 60' & sleep 0.5");
  launch.limits.processes = 50;  // asks for a cgroup
  launch.cgroups = cgroups_;
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  process->wait();
  pid_t escaped = std::stoi(*read_file(root_->path() / "escaped"));
  EXPECT_TRUE(subreaper.group_gone(escaped)) << "the escaped session " << escaped << " still lives";
}

class RunAsTest : public RankProcessTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "switching users needs root";
    RankProcessTest::SetUp();
    auto user = ensure_user("pesc", /*create=*/true);
    ASSERT_TRUE(user.ok()) << user.status();
    user_ = *user;
    ::chmod(root_->path().c_str(), 0777);
  }
  Credentials user_;
};

TEST_F(RunAsTest, RankRunsAsTheUnprivilegedUser) {
  write_file("secret", "root only\n", 0600);
  RankLaunch launch = shell("id -u; id -g; id -G; cat secret || echo refused");
  launch.run_as = user_;
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  process->wait();
  EXPECT_THAT(output(), HasSubstr(absl::StrCat(user_.uid, "\n", user_.gid, "\n", user_.gid, "\n")));
  EXPECT_THAT(output(), HasSubstr("refused"));
  EXPECT_EQ(output().find("root only"), std::string::npos);
}

class SandboxTest : public RunAsTest {
 protected:
  void SetUp() override {
    RunAsTest::SetUp();
    if (IsSkipped()) return;
    std::optional<std::filesystem::path> bwrap = find_bwrap();
    if (!bwrap) GTEST_SKIP() << "bubblewrap is not installed";
    absl::Status works = probe_bwrap(*bwrap, user_);
    if (!works.ok()) GTEST_SKIP() << works;
    bwrap_ = *bwrap;
    std::filesystem::create_directories(root_->path() / "mine");
    std::filesystem::create_directories(root_->path() / "other");
    ::chown((root_->path() / "mine").c_str(), user_.uid, user_.gid);
    ::chmod((root_->path() / "other").c_str(), 0777);
    write_file("other/secret", "another rank's\n", 0666);
  }

  RankLaunch sandboxed(const std::string& script) const {
    RankLaunch launch = shell(script);
    launch.working_dir = root_->path() / "mine";
    launch.run_as = user_;
    launch.sandbox = Sandbox{.bwrap = bwrap_, .writable = {root_->path() / "mine"}};
    return launch;
  }
  std::filesystem::path bwrap_;
};

TEST_F(SandboxTest, RankSeesOnlyItsOwnDirectoriesAndAReadOnlySystem) {
  const std::string other = (root_->path() / "other" / "secret").string();
  const std::string probe = absl::StrCat("/tmp/pesc-sandbox-probe-", ::getpid());
  RankLaunch launch = sandboxed("cat " + other + " 2>/dev/null || echo other-hidden\n"
                                "touch /usr/pesc-test 2>/dev/null || echo system-read-only\n"
                                "echo mine > here && cat here\n"
                                "touch " + probe + " && echo tmp-writable\n"
                                "ls /home /root /var 2>/dev/null || echo homes-hidden\n");
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  RankExit exit = process->wait();
  EXPECT_EQ(exit.exit_code, 0) << output();
  EXPECT_EQ(output(), "other-hidden\nsystem-read-only\nmine\ntmp-writable\nhomes-hidden\n");
  EXPECT_FALSE(std::filesystem::exists(probe)) << "its /tmp is its own";
}

TEST_F(SandboxTest, NoNetworkUnlessAsked) {
  RankLaunch launch = sandboxed("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '");
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  process->wait();
  EXPECT_EQ(output(), "lo\n") << "only a loopback of its own";

  std::filesystem::remove(output_file());
  launch.sandbox->network = true;
  process = start(launch);
  ASSERT_NE(process, nullptr);
  process->wait();
  std::ifstream host("/proc/net/dev");
  std::string line;
  int host_interfaces = -2;
  while (std::getline(host, line)) ++host_interfaces;
  const std::string interfaces = output();
  EXPECT_EQ(std::count(interfaces.begin(), interfaces.end(), '\n'), host_interfaces);
}

TEST_F(SandboxTest, InheritedDescriptorsReachTheSandboxedProcess) {
  int to_rank[2], from_rank[2];
  ASSERT_EQ(::pipe2(to_rank, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(from_rank, O_CLOEXEC), 0);
  RankLaunch launch = sandboxed("read line <&3; echo \"got $line\" >&4");
  launch.inherited_fds = {to_rank[0], from_rank[1]};
  std::unique_ptr<RankProcess> process = start(launch);
  ::close(to_rank[0]);
  ::close(from_rank[1]);
  ASSERT_NE(process, nullptr);
  ASSERT_EQ(::write(to_rank[1], "rank 7\n", 7), 7);
  char buffer[64] = {};
  ssize_t got = ::read(from_rank[0], buffer, sizeof buffer - 1);
  ::close(to_rank[1]);
  ::close(from_rank[0]);
  EXPECT_EQ(process->wait().exit_code, 0) << output();
  EXPECT_EQ(std::string(buffer, got > 0 ? static_cast<size_t>(got) : 0), "got rank 7\n");
}

TEST(SandboxArgvTest, AGpuRankSeesItsGpuDevicesInTheSandboxAndNoOthers) {
  const Sandbox sandbox{.bwrap = "/usr/bin/bwrap", .devices = {"/dev/nvidia1", "/dev/nvidiactl"}};
  const std::vector<std::string> words = sandboxed_argv(sandbox, "/work", {"/bin/true"});
  const auto fresh_dev = std::find(words.begin(), words.end(), "--dev");
  const auto gpu = std::find(words.begin(), words.end(), "/dev/nvidia1");
  ASSERT_NE(fresh_dev, words.end());
  ASSERT_NE(gpu, words.end());
  EXPECT_LT(fresh_dev, gpu) << "bound into the sandbox's own /dev, not hidden by it";
  EXPECT_EQ(*(gpu - 1), "--dev-bind-try");
  EXPECT_NE(std::find(words.begin(), words.end(), "/dev/nvidiactl"), words.end());
  EXPECT_TRUE(nvidia_devices({}).empty()) << "a rank without GPUs gets no GPU device";
  for (const std::filesystem::path& device : nvidia_devices({0, 1})) EXPECT_TRUE(std::filesystem::exists(device));
}

TEST_F(SandboxTest, TerminateReachesTheRankInsideTheSandbox) {
  RankLaunch launch = sandboxed("trap 'echo term; exit 3' TERM; echo ready; while :; do sleep 0.05; done");
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  ASSERT_TRUE(await_output("ready"));
  process->terminate(5s);
  RankExit exit = process->wait();
  EXPECT_THAT(output(), HasSubstr("term"));
  EXPECT_LT(exit.end_unix_ms - exit.start_unix_ms, 4000);
}

TEST_F(SandboxTest, MemoryLimitIsReportedThroughTheSandbox) {
  RankLaunch launch = memory_hog(sandboxed(""));
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->wait().limit_exceeded, "memory") << output();
}

TEST_F(SandboxTest, CpuLimitIsReportedThroughTheSandbox) {
  RankLaunch launch = sandboxed("while :; do :; done");
  launch.limits.cpu_ms = 500;
  std::unique_ptr<RankProcess> process = start(launch);
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->wait().limit_exceeded, "cpu") << output();
}

// A warm runner is the user's code: its answers are parsed, never trusted.
TEST(RunnerAnswerTest, OnlyDoneAStatusAndAPlainFileIsAnAnswer) {
  EXPECT_EQ(parse_runner_answer("done\t0")->status, 0);
  EXPECT_EQ(parse_runner_answer("done\t3")->status, 3);
  EXPECT_TRUE(parse_runner_answer("done\t3")->file_name.empty());
  auto with_file = parse_runner_answer("done\t1\tresult.pkl\t42");
  ASSERT_TRUE(with_file.ok()) << with_file.status();
  EXPECT_EQ(with_file->status, 1);
  EXPECT_EQ(with_file->file_name, "result.pkl");
  EXPECT_EQ(with_file->file_size, 42u);
  for (const char* wrong : {"", "done", "done\t", "done\tx", "done\t1\textra", "ok\t0", "done 0",
                            "done\t0\tresult.pkl", "done\t0\tresult.pkl\t-1", "done\t0\t../x\t1",
                            "done\t0\ta/b\t1", "done\t0\t..\t1", "done\t0\t\t1", "done\t0\toutput.txt\t1",
                            "done\t0\tresult.pkl\t99999999999", "done\t0\tx\t1\textra"}) {
    EXPECT_EQ(parse_runner_answer(wrong).status().code(), absl::StatusCode::kDataLoss) << wrong;
  }
  EXPECT_THAT(std::string(parse_runner_answer("\x1b[2J").status().message()), ::testing::HasSubstr("\\x1b[2J"));
}

}  // namespace
}  // namespace pesc
