// A user's mistake fails that user's job, fast, and never the worker: real
// daemons, real files, real archives. Each case ends in seconds with a message
// that says what to change, and the worker then runs a good job as before.
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "client/client.h"
#include "farm_harness.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::CommandResult;
using testing::ScratchDir;
using testing::TestFarm;
using testing::run_command;
using testing::write_script;

constexpr auto kFast = std::chrono::seconds(15);
const std::vector<std::string> kNoCoordinator = {"PESC_COORDINATOR="};

// A tar of `dir`'s content, made by the system's tar as a user would.
fs::path tar_of(const fs::path& dir, const fs::path& tar) {
  CommandResult made = run_command({"/bin/tar", "-C", dir.string(), "-cf", tar.string(), "."});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  return tar;
}

// A directory holding `prog`, executable but with no #! line: what a new
// user writes first.
fs::path archive_without_shebang(const fs::path& scratch) {
  fs::path dir = scratch / "app";
  fs::create_directories(dir);
  write_script(dir, "prog", "echo never\n");
  return tar_of(dir, scratch / "app.tar");
}

class MistakeTest : public ::testing::Test {
 protected:
  MistakeTest() : farm_(1, 2), client_("shell", {.coordinator = farm_.address()}) {}

  // The worker was not blamed: it is not quarantined and runs a good job.
  void expect_worker_still_serves() {
    auto library = Client::connect(farm_.address(), {.token = farm_.admin_token()});
    ASSERT_TRUE(library.ok()) << library.status();
    auto workers = (*library)->workers();
    ASSERT_TRUE(workers.ok()) << workers.status();
    for (const WorkerSummary& worker : *workers) EXPECT_EQ(worker.quarantined, "") << worker.id;
    fs::path good = write_script(scratch_.path(), "good.sh", "echo \"good $PESC_RANK\"\n");
    Results results = client_.map(good, 4).wait();
    EXPECT_TRUE(results.ok()) << results.output();
    EXPECT_EQ(results.output(), "good 0\ngood 1\ngood 2\ngood 3\n");
  }

  ScratchDir scratch_;
  TestFarm farm_;
  Farm client_;
};

TEST_F(MistakeTest, ProgramWithoutShebangFailsTheJobFastAndNotTheWorker) {
  fs::path tar = archive_without_shebang(scratch_.path());
  Farm native("native", {.coordinator = farm_.address()});
  const auto started = std::chrono::steady_clock::now();
  Job job = native.map(tar, 50, {}, {.entry = "prog"});
  try {
    job.wait();
    ADD_FAILURE() << "a job whose ranks cannot execute must fail";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kFailedPrecondition);
    EXPECT_THAT(error.what(), HasSubstr("#!"));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, kFast);
  auto library = Client::connect(farm_.address(), {.token = farm_.admin_token()});
  ASSERT_TRUE(library.ok());
  auto info = (*library)->job(job.id());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, JobState::kFailed);
  EXPECT_THAT(info->failure, HasSubstr("#!"));
  EXPECT_LT(info->progress.failed, 50) << "the rest of its ranks never ran";
  CommandResult status = run_command({PESC_CLI_BINARY, "status", "--coordinator", farm_.address(), job.id()});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr(": failed\n"));
  EXPECT_THAT(status.out, HasSubstr("failed by fault: job "));
  EXPECT_THAT(status.out, HasSubstr("failed: cannot start"));
  CommandResult report = run_command({PESC_CLI_BINARY, "report", "--coordinator", farm_.address(), job.id()});
  EXPECT_EQ(report.exit_code, 0) << report.err;
  EXPECT_THAT(report.err, HasSubstr("failed: cannot start"));
  EXPECT_THAT(report.out, HasSubstr("failed by fault    job "));
  expect_worker_still_serves();
}

TEST_F(MistakeTest, AGangWhoseProgramCannotExecuteFailsRatherThanRestarting) {
  fs::path tar = archive_without_shebang(scratch_.path());
  Farm native("native", {.coordinator = farm_.address()});
  Job job = native.map(tar, 2, {}, {.entry = "prog", .parallel = true});
  EXPECT_THROW(job.wait(), Error);
  auto library = Client::connect(farm_.address(), {.token = farm_.admin_token()});
  ASSERT_TRUE(library.ok());
  EXPECT_EQ((*library)->job(job.id())->state, JobState::kFailed);
  expect_worker_still_serves();
}

TEST_F(MistakeTest, EachFailedRankSaysWhoseFaultItWas) {
  fs::path script =
      write_script(scratch_.path(), "exit3.sh", "echo \"rank $PESC_RANK\"\n[ \"$PESC_RANK\" = 1 ] && exit 3\n:\n");
  Results results = client_.map(script, 3).wait();
  EXPECT_EQ(results[0].failure_class, FailureClass::kNone);
  EXPECT_EQ(results[1].failure_class, FailureClass::kRank);
  EXPECT_EQ(std::string(to_string(results[1].failure_class)), "rank");
  EXPECT_EQ(results.report().failed_by_class.rank, 1);
  expect_worker_still_serves();
}

TEST_F(MistakeTest, LocalFileThatCannotExecuteIsRefusedBeforeUpload) {
  fs::path not_executable = write_script(scratch_.path(), "tool", "#!/bin/sh\necho hi\n",
                                         fs::perms::owner_read | fs::perms::owner_write);
  fs::path no_shebang = write_script(scratch_.path(), "tool2", "echo hi\n");
  Farm native("native", {.coordinator = farm_.address()});
  try {
    native.map(not_executable, 3);
    ADD_FAILURE() << "a file without its exec bit is refused";
  } catch (const Error& error) {
    EXPECT_THAT(error.what(), HasSubstr("chmod +x"));
  }
  try {
    native.map(no_shebang, 3);
    ADD_FAILURE() << "a file with no #! line is refused";
  } catch (const Error& error) {
    EXPECT_THAT(error.what(), HasSubstr("#!"));
  }
  expect_worker_still_serves();
}

TEST_F(MistakeTest, NulByteInAParameterIsRefusedAtSubmit) {
  fs::path script = write_script(scratch_.path(), "echo.sh", "echo \"$PESC_PARAMETER_0\"\n");
  try {
    client_.map(script, 2, {std::string("a\0b", 3)});
    ADD_FAILURE() << "no process can receive a NUL byte in its arguments";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(error.what(), HasSubstr("NUL"));
  }
  expect_worker_still_serves();
}

TEST_F(MistakeTest, LargeParametersWithinTheBoundsReachTheRank) {
  // 100 of 10 kB: within the documented bounds; passed in argv and again in
  // the environment they would exceed what the kernel starts a process with.
  std::vector<std::string> parameters;
  for (int i = 0; i < 100; ++i) parameters.push_back(std::string(10 * 1024, static_cast<char>('a' + i % 26)));
  fs::path script = write_script(scratch_.path(), "count.sh",
                                 "shift 15; echo \"$# $PESC_PARAMETER_COUNT ${#1}\"\n");
  Results results = client_.map(script, 2, parameters).wait();
  ASSERT_TRUE(results.ok()) << results[0].error << results.output();
  EXPECT_EQ(results[0].output, "100 100 10240\n");
  expect_worker_still_serves();
}

TEST_F(MistakeTest, ArchiveWithARelativeLinkInsideItRuns) {
  fs::path dir = scratch_.path() / "linked";
  fs::create_directories(dir);
  write_script(dir, "main.sh", "echo \"main $PESC_RANK\"\n");
  fs::create_symlink("main.sh", dir / "ok");
  fs::path tar = tar_of(dir, scratch_.path() / "linked.tar");
  Results results = client_.map(tar, 2, {}, {.entry = "main.sh"}).wait();
  EXPECT_TRUE(results.ok()) << results[0].error << results.output();
  EXPECT_EQ(results.output(), "main 0\nmain 1\n");
}

TEST_F(MistakeTest, LinkLeadingOutOfTheOutputDirIsLeftOutNotAFailure) {
  fs::path script = write_script(scratch_.path(), "link.sh",
                                 "ln -s /etc/passwd \"$PESC_OUTPUT_DIR/passwd\"\n"
                                 "ln -s kept.txt \"$PESC_OUTPUT_DIR/alias\"\n"
                                 "echo kept > \"$PESC_OUTPUT_DIR/kept.txt\"\n"
                                 "echo done\n");
  Results results = client_.map(script, 3).wait();
  ASSERT_TRUE(results.ok()) << results[0].error;
  for (const RankResult& rank : results) {
    EXPECT_EQ(rank.left_out, std::vector<std::string>{"passwd"});
    EXPECT_EQ(results.read_file(static_cast<size_t>(rank.rank), "kept.txt"), "kept\n");
  }
  expect_worker_still_serves();
}

TEST(EmbeddedMistakeTest, PescRunOfAProgramThatCannotExecuteEndsInSeconds) {
  ScratchDir scratch;
  fs::path tar = archive_without_shebang(scratch.path());
  const auto started = std::chrono::steady_clock::now();
  CommandResult run = run_command({PESC_CLI_BINARY, "run", "--repetitions", "20", "--domain", "native", "--entry",
                                   "prog", tar.string()},
                                  kNoCoordinator);
  EXPECT_LT(std::chrono::steady_clock::now() - started, kFast);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("#!"));
  EXPECT_THAT(run.err, HasSubstr("failed"));

  fs::path plain = write_script(scratch.path(), "plain", "echo hi\n");
  run = run_command({PESC_CLI_BINARY, "run", "--repetitions", "2", plain.string()}, kNoCoordinator);
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("#!"));
}

}  // namespace
}  // namespace pesc
