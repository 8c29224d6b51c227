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

#include "common/clock.h"
#include "common/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pesc {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

class RankProcessTest : public ::testing::Test {
 protected:
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
  EXPECT_THAT(process.status().message(), HasSubstr("Exec format error"));

  launch.argv = {write_file("orphan.sh", "#!/nonexistent/interpreter\n", 0755)};
  process = RankProcess::start(launch);
  ASSERT_FALSE(process.ok());
  EXPECT_THAT(process.status().message(), HasSubstr("#! line"));
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

}  // namespace
}  // namespace pesc
