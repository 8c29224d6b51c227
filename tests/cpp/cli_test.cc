// The `pesc` command as scripts use it: output on stdout in rank order and
// nothing else, errors on stderr, exit codes that say what happened.
#include <algorithm>
#include <filesystem>
#include <sstream>

#include "farm_harness.h"
#include "gtest/gtest.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::ScratchDir;
using testing::TestFarm;
using testing::eventually;
using testing::run_command;
using testing::write_script;

// Without PESC_COORDINATOR from the caller's environment leaking in.
const std::vector<std::string> kNoCoordinator = {"PESC_COORDINATOR="};

TEST(CliTest, RunOnTheEmbeddedFarmPrintsOnlyTheOutputInRankOrder) {
  ScratchDir scratch;
  fs::path script =
      write_script(scratch.path(), "sim.sh", "sleep 0.$(( (4 - PESC_RANK) ))\necho \"rank $PESC_RANK: $*\"\n");
  CommandResult run = run_command(
      {PESC_CLI_BINARY, "run", "--repetitions", "4", "--slots", "4", script.string(), "--", "3", "0.5"},
      kNoCoordinator);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  // Each line carries the flags; check order and that nothing else is printed.
  size_t position = 0;
  for (int rank = 0; rank < 4; ++rank) {
    size_t found = run.out.find("rank " + std::to_string(rank) + ": --app_dir", position);
    ASSERT_NE(found, std::string::npos) << run.out;
    position = found;
  }
  EXPECT_NE(run.out.find("--parameters 3 0.5\n"), std::string::npos) << run.out;
  EXPECT_EQ(run.err, "") << "no progress line on a pipe";
}

TEST(CliTest, FailedRanksSetTheExitCodeAndAreNamed) {
  ScratchDir scratch;
  fs::path script = write_script(scratch.path(), "fail.sh", "echo $PESC_RANK\nexit $((PESC_RANK == 2))\n");
  CommandResult run = run_command({PESC_CLI_BINARY, "run", "--repetitions", "3", script.string()}, kNoCoordinator);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.out, "0\n1\n2\n");
  EXPECT_NE(run.err.find("1 of 3 ranks failed (rank 2)"), std::string::npos) << run.err;
}

TEST(CliTest, SavesResultsWithOut) {
  ScratchDir scratch;
  fs::path script = write_script(scratch.path(), "save.sh", "echo hi > \"$PESC_OUTPUT_DIR/file.txt\"\necho $PESC_RANK\n");
  fs::path out = scratch.path() / "results";
  CommandResult run = run_command(
      {PESC_CLI_BINARY, "run", "--repetitions", "2", "--out", out.string(), script.string()}, kNoCoordinator);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(fs::exists(out / "rank_1" / "file.txt"));
  EXPECT_TRUE(fs::exists(out / "rank_0" / "output.txt"));
  EXPECT_TRUE(fs::exists(out / "output.txt"));
}

TEST(CliTest, RepeatedSharedFlagsAddUp) {
  ScratchDir scratch;
  fs::path first = write_script(scratch.path(), "first.txt", "one\n");
  fs::path second = write_script(scratch.path(), "second.txt", "two\n");
  fs::path script = write_script(scratch.path(), "both.sh", "cat first.txt second.txt\n");
  CommandResult run = run_command({PESC_CLI_BINARY, "run", "--repetitions", "1", "--shared", first.string(),
                                   "--shared=" + second.string(), script.string()},
                                  kNoCoordinator);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "one\ntwo\n");
}

TEST(CliTest, SeedReachesEveryRankAsPescSeedAndABadOneIsRefused) {
  ScratchDir scratch;
  fs::path script = write_script(scratch.path(), "seeded.sh", "echo \"$PESC_RANK ${PESC_SEED-none}\"\n");
  CommandResult seeded = run_command(
      {PESC_CLI_BINARY, "run", "--repetitions", "2", "--seed", "18446744073709551615", script.string()},
      kNoCoordinator);
  EXPECT_EQ(seeded.exit_code, 0) << seeded.err;
  EXPECT_EQ(seeded.out, "0 18446744073709551615\n1 18446744073709551615\n");
  EXPECT_EQ(run_command({PESC_CLI_BINARY, "run", script.string()}, kNoCoordinator).out, "0 none\n");
  for (const char* bad : {"-1", "18446744073709551616", "1e3"}) {
    CommandResult refused =
        run_command({PESC_CLI_BINARY, "run", "--seed", bad, script.string()}, kNoCoordinator);
    EXPECT_EQ(refused.exit_code, 2) << bad;
    EXPECT_NE(refused.err.find("--seed: takes a whole number from 0 to 18446744073709551615"), std::string::npos)
        << refused.err;
  }
}

TEST(CliTest, UsageAndInputErrors) {
  ScratchDir scratch;
  fs::path script = write_script(scratch.path(), "ok.sh", "true\n");
  CommandResult none = run_command({PESC_CLI_BINARY}, kNoCoordinator);
  EXPECT_EQ(none.exit_code, 2);
  CommandResult zero =
      run_command({PESC_CLI_BINARY, "run", "--repetitions", "0", script.string()}, kNoCoordinator);
  EXPECT_EQ(zero.exit_code, 2);
  EXPECT_NE(zero.err.find("repetitions must be at least 1"), std::string::npos) << zero.err;
  CommandResult missing = run_command({PESC_CLI_BINARY, "run", "/no/such/sim.py"}, kNoCoordinator);
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("\"/no/such/sim.py\" does not exist"), std::string::npos) << missing.err;
  CommandResult domain =
      run_command({PESC_CLI_BINARY, "run", "--domain", "fortran", script.string()}, kNoCoordinator);
  EXPECT_EQ(domain.exit_code, 2);
  EXPECT_NE(domain.err.find("unknown domain \"fortran\""), std::string::npos) << domain.err;
  CommandResult down = run_command({PESC_CLI_BINARY, "--coordinator", "127.0.0.1:1", "jobs"}, {});
  EXPECT_EQ(down.exit_code, 3);
  EXPECT_NE(down.err.find("cannot reach the pesc coordinator"), std::string::npos) << down.err;
  CommandResult needs = run_command({PESC_CLI_BINARY, "status", "abc"}, kNoCoordinator);
  EXPECT_EQ(needs.exit_code, 2);
  EXPECT_NE(needs.err.find("needs a running coordinator"), std::string::npos) << needs.err;
}

TEST(CliTest, DetachThenStatusWaitResultsJobsWorkers) {
  ScratchDir scratch;
  TestFarm farm(1, 2);
  const std::vector<std::string> env = {"PESC_COORDINATOR=" + farm.address()};
  fs::path script = write_script(scratch.path(), "job.sh", "echo \"r$PESC_RANK\"\n");
  CommandResult detach =
      run_command({PESC_CLI_BINARY, "run", "--detach", "--repetitions", "3", "--name", "demo", script.string()}, env);
  ASSERT_EQ(detach.exit_code, 0) << detach.err;
  std::string job_id = detach.out.substr(0, detach.out.find('\n'));
  ASSERT_EQ(job_id.size(), 12u) << detach.out;

  CommandResult wait = run_command({PESC_CLI_BINARY, "wait", job_id}, env);
  EXPECT_EQ(wait.exit_code, 0) << wait.err;
  EXPECT_EQ(wait.out, "r0\nr1\nr2\n");
  CommandResult status = run_command({PESC_CLI_BINARY, "status", job_id}, env);
  EXPECT_NE(status.out.find("finished"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("3 succeeded"), std::string::npos) << status.out;
  fs::path out = scratch.path() / "out";
  CommandResult results = run_command({PESC_CLI_BINARY, "results", job_id, "--out", out.string()}, env);
  EXPECT_EQ(results.exit_code, 0) << results.err;
  EXPECT_TRUE(fs::exists(out / "rank_2" / "output.txt"));
  CommandResult jobs = run_command({PESC_CLI_BINARY, "jobs"}, env);
  EXPECT_NE(jobs.out.find(job_id), std::string::npos) << jobs.out;
  EXPECT_NE(jobs.out.find("demo"), std::string::npos) << jobs.out;
  CommandResult workers = run_command({PESC_CLI_BINARY, "workers"}, env);
  EXPECT_NE(workers.out.find("worker0"), std::string::npos) << workers.out;
  EXPECT_NE(workers.out.find("online"), std::string::npos) << workers.out;
  CommandResult unknown = run_command({PESC_CLI_BINARY, "status", "nosuchjob"}, env);
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no job \"nosuchjob\""), std::string::npos) << unknown.err;
}

TEST(CliTest, ReportShowsSpeedupSlotsAndEachWorkerAndDrawsTheTimeline) {
  ScratchDir scratch;
  TestFarm farm(2, 2);
  const std::vector<std::string> env = {"PESC_COORDINATOR=" + farm.address()};
  ASSERT_TRUE(testing::eventually(
      [&] {
        std::string listing = run_command({PESC_CLI_BINARY, "workers"}, env).out;
        return listing.find("worker0") != std::string::npos && listing.find("worker1") != std::string::npos;
      },
      std::chrono::seconds(30)));
  fs::path script = write_script(scratch.path(), "nap.sh", "sleep 0.4\n");
  CommandResult run = run_command({PESC_CLI_BINARY, "run", "--repetitions", "8", script.string()}, env);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  CommandResult jobs = run_command({PESC_CLI_BINARY, "jobs"}, env);
  const std::string job_id = jobs.out.substr(jobs.out.find('\n') + 1, 12);

  fs::path svg = scratch.path() / "timeline.svg";
  CommandResult report = run_command({PESC_CLI_BINARY, "report", job_id, "--svg", svg.string()}, env);
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_NE(report.out.find("job " + job_id + ": 8 ranks, 8 succeeded, 0 failed"), std::string::npos) << report.out;
  // 8 ranks of 0.4 s on two workers of 2 slots: the report must see all 4 slots and a real speedup.
  const size_t speedup_at = report.out.find("speedup ");
  ASSERT_NE(speedup_at, std::string::npos) << report.out;
  EXPECT_GT(std::stod(report.out.substr(speedup_at + 8)), 2.0) << report.out;
  EXPECT_NE(report.out.find("on 4 slots"), std::string::npos) << report.out;
  EXPECT_NE(report.out.find("worker0     2"), std::string::npos) << report.out;
  EXPECT_NE(report.out.find("worker1     2"), std::string::npos) << report.out;
  const std::string picture = testing::read_all(svg);
  EXPECT_EQ(picture.rfind("<svg ", 0), 0u) << report.err;
  size_t bars = 0;
  for (size_t at = picture.find("<title>rank "); at != std::string::npos; at = picture.find("<title>rank ", at + 1)) {
    ++bars;
  }
  EXPECT_EQ(bars, 8u);

  CommandResult unknown = run_command({PESC_CLI_BINARY, "report", "nosuchjob"}, env);
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
}

TEST(CliTest, StatusCountsRanksQueuedAtAWorkerApartFromTheOnesItsSlotsRun) {
  ScratchDir scratch;
  TestFarm farm(1, 4);
  fs::path started = scratch.path() / "started";
  fs::create_directories(started);
  // Its first 4 ranks end at once, so its ranks are known short (ranks are
  // held beyond the slots only then); the next ones sleep.
  fs::path script = write_script(scratch.path(), "long.sh",
                                 "touch \"$PESC_PARAMETER_0/$PESC_RANK\"\n[ \"$PESC_RANK\" -lt 4 ] && exit 0\nsleep 60\n");
  CommandResult run = run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "run", "--detach",
                                   "--repetitions", "12", script.string(), "--", started.string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string job = run.out.substr(0, run.out.find('\n'));
  auto ranks_started = [&] { return std::distance(fs::directory_iterator(started), fs::directory_iterator()); };
  ASSERT_TRUE(eventually([&] { return ranks_started() == 8; }));
  // The worker holds at least a rank per slot beyond its 4 slots: 4 run, 4 wait there.
  CommandResult status;
  EXPECT_TRUE(eventually([&] {
    status = run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "status", job});
    return status.out.find("12 ranks: 0 pending, 4 queued at workers, 4 running, 4 succeeded") != std::string::npos;
  })) << status.out << status.err;
  // `pesc workers` agrees: 4 running on its 4 slots.
  CommandResult workers = run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "workers"});
  std::istringstream row(workers.out.substr(workers.out.find("\nworker0")));
  std::string id, host, state;
  int slots = 0, running = 0;
  row >> id >> host >> state >> slots >> running;
  EXPECT_EQ(slots, 4) << workers.out;
  EXPECT_EQ(running, 4) << workers.out;
  run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "cancel", job});
}

TEST(CliTest, WarnsWhenNoWorkerCanRunTheJobAndCancelsItOnTerm) {
  ScratchDir scratch;
  TestFarm farm(0);
  fs::path script = write_script(scratch.path(), "job.sh", "true\n");
  // `timeout` sends SIGTERM after 5 s, as a user's Ctrl-C would end the wait.
  CommandResult run = run_command({"/usr/bin/timeout", "--preserve-status", "5", PESC_CLI_BINARY, "--coordinator", farm.address(), "run",
                                   "--repetitions", "2", script.string()},
                                  {});
  EXPECT_EQ(run.exit_code, 130) << run.err;
  EXPECT_NE(run.err.find("no worker is connected to the coordinator"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("cancelled"), std::string::npos) << run.err;
  CommandResult jobs = run_command({PESC_CLI_BINARY, "--coordinator", farm.address(), "jobs"}, {});
  EXPECT_NE(jobs.out.find("cancelled"), std::string::npos) << jobs.out;
}

// Help text with its wrapped lines joined, to find phrases a line break may split.
std::string unwrapped(const std::string& help) {
  std::string joined;
  for (size_t i = 0; i < help.size(); ++i) {
    if (help[i] == '\n' && i + 1 < help.size() && help[i + 1] == ' ' && help.find_first_not_of(' ', i + 1) > i + 8) {
      joined += ' ';
      i = help.find_first_not_of(' ', i + 1) - 1;
    } else {
      joined += help[i];
    }
  }
  return joined;
}

// Every way of asking for help: exit 0, the text on stdout, flags in dash form.
TEST(CliTest, HelpListsTheCommandsAndTheFlagsInDashForm) {
  for (const std::vector<std::string>& ask : {std::vector<std::string>{"--help"}, {"help"}, {"-h"}}) {
    std::vector<std::string> argv = {PESC_CLI_BINARY};
    argv.insert(argv.end(), ask.begin(), ask.end());
    CommandResult help = run_command(argv, kNoCoordinator);
    EXPECT_EQ(help.exit_code, 0) << ask[0] << help.err;
    EXPECT_EQ(help.err, "");
    for (const char* expected : {"Usage: pesc", "run ", "status ", "report ", "worker-token ", "certs ",
                                 "--coordinator HOST:PORT", "--token-file FILE", "connection/security:",
                                 "`pesc help COMMAND`"}) {
      EXPECT_NE(help.out.find(expected), std::string::npos) << ask[0] << " lacks " << expected << ":\n" << help.out;
    }
    EXPECT_EQ(help.out.find("helpfull"), std::string::npos) << help.out;
    EXPECT_EQ(help.out.find("token_file"), std::string::npos) << help.out;
  }
}

TEST(CliTest, EachCommandHasItsOwnHelpFromTheFlagsItParses) {
  for (const std::string command : {"run", "status", "wait", "cancel", "results", "delete", "report", "jobs",
                                    "workers", "whoami", "user", "worker-token", "room", "certs", "help", "retry",
                                    "logs"}) {
    CommandResult asked = run_command({PESC_CLI_BINARY, "help", command}, kNoCoordinator);
    CommandResult flag = run_command({PESC_CLI_BINARY, command, "--help"}, kNoCoordinator);
    EXPECT_EQ(asked.exit_code, 0) << command << asked.err;
    EXPECT_EQ(flag.exit_code, 0) << command << flag.err;
    EXPECT_EQ(asked.out, flag.out) << command;
    EXPECT_NE(asked.out.find("Usage: pesc " + command), std::string::npos) << asked.out;
    EXPECT_EQ(asked.out.find('_' + std::string("attempts")), std::string::npos) << asked.out;
  }
  const std::string run = unwrapped(run_command({PESC_CLI_BINARY, "run", "--help"}, kNoCoordinator).out);
  for (const char* expected :
       {"PROCESS", "what to run:", "limits per rank:", "where ranks run:", "connection/security:",
        "--repetitions N", "how many ranks to run (default: 1)", "--max-attempts N", "--checkpoint-interval SECONDS",
        "--memory SIZE", "--room ROOM,...", "--same-machine", "--min-capability X", "--slots N", "-- PARAMETERS"}) {
    EXPECT_NE(run.find(expected), std::string::npos) << "lacks " << expected << ":\n" << run;
  }
  CommandResult report = run_command({PESC_CLI_BINARY, "help", "report"}, kNoCoordinator);
  EXPECT_NE(report.out.find("--svg FILE"), std::string::npos) << report.out;
  EXPECT_EQ(report.out.find("--repetitions"), std::string::npos) << "run's flags belong to run:\n" << report.out;
  EXPECT_NE(run_command({PESC_CLI_BINARY, "help", "retry"}, kNoCoordinator).out.find("--ranks LIST"),
            std::string::npos);
  EXPECT_NE(run_command({PESC_CLI_BINARY, "help", "logs"}, kNoCoordinator).out.find("-f,--follow"),
            std::string::npos);
}

// A mistake on the command line: one line naming it and where the help is, exit 2.
TEST(CliTest, UnknownCommandsFlagsAndArgumentsAreOneLineErrors) {
  ScratchDir scratch;
  fs::path script = write_script(scratch.path(), "ok.sh", "true\n");
  struct Mistake {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Mistake> mistakes = {
      {{"frobnicate"}, "pesc: unknown command \"frobnicate\"; see `pesc --help`\n"},
      {{"help", "frobnicate"}, "pesc: unknown command \"frobnicate\"; see `pesc --help`\n"},
      {{"--bogus", "jobs"}, "pesc: unknown flag --bogus; see `pesc --help`\n"},
      {{"--repetitions", "3", "run", script.string()},
       "pesc: --repetitions belongs after the command: pesc run --repetitions ...; see `pesc help run`\n"},
      {{"run", "--bogus=3", script.string()}, "pesc: unknown flag --bogus; see `pesc help run`\n"},
      {{"run", script.string(), "extra"}, "pesc: unexpected argument \"extra\"; see `pesc help run`\n"},
      {{"status"}, "pesc: JOB is required; see `pesc help status`\n"},
      {{"jobs", "--", "x"}, "pesc: only `pesc run` takes parameters after --; see `pesc help jobs`\n"},
  };
  for (const Mistake& mistake : mistakes) {
    std::vector<std::string> argv = {PESC_CLI_BINARY};
    argv.insert(argv.end(), mistake.args.begin(), mistake.args.end());
    CommandResult result = run_command(argv, kNoCoordinator);
    EXPECT_EQ(result.exit_code, 2) << mistake.args[0];
    EXPECT_EQ(result.err, mistake.error);
    EXPECT_EQ(result.out, "");
  }
  CommandResult not_a_number = run_command({PESC_CLI_BINARY, "run", "--repetitions", "many", script.string()});
  EXPECT_EQ(not_a_number.exit_code, 2);
  EXPECT_NE(not_a_number.err.find("--repetitions"), std::string::npos) << not_a_number.err;
  EXPECT_NE(not_a_number.err.find("see `pesc help run`"), std::string::npos) << not_a_number.err;
}

// Scripts written for the absl flags keep working: underscores, one dash,
// flags before the command, and everything after -- untouched.
TEST(CliTest, OldFlagSpellingsStillWorkAndParametersPassByteForByte) {
  ScratchDir scratch;
  fs::path script = write_script(scratch.path(), "args.sh", "printf '%s|' \"$@\"; echo\n");
  CommandResult run = run_command({PESC_CLI_BINARY, "--slots=2", "run", "--max_attempts", "2", "-same_machine",
                                   "--output_size=1M", script.string(), "--", "--help", "--bogus", "a b", "--", ""},
                                  kNoCoordinator);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("--parameters|--help|--bogus|a b|--||\n"), std::string::npos) << run.out;
  // Given twice, a flag means its last value; list flags add up.
  CommandResult twice = run_command({PESC_CLI_BINARY, "run", "--repetitions=5", "--repetitions", "2", "--room",
                                     "public", "--room=public,public", script.string()},
                                    kNoCoordinator);
  EXPECT_EQ(twice.exit_code, 0) << twice.err;
  EXPECT_EQ(std::count(twice.out.begin(), twice.out.end(), '\n'), 2) << twice.out;
}

TEST(CliTest, DaemonsHelpListsTheirFlagsInDashFormWithDefaults) {
  struct Daemon {
    std::string binary;
    std::vector<std::string> expected;
  };
  const std::vector<Daemon> daemons = {
      {PESC_COORDINATOR_BINARY,
       {"Usage: pesc-coordinator", "--listen HOST:PORT", "(default: 127.0.0.1:7070)", "--state-dir DIR",
        "--worker-lease-ms MS", "(default: 10000)", "--tls-client-ca PEM", "backup DEST"}},
      {PESC_WORKER_BINARY,
       {"Usage: pesc-worker", "--work-dir DIR", "(default: /var/tmp/pesc-worker)", "--owners-first",
        "--no-sandbox", "--interpreter NAME=PATH,...", "--disk-reserve-mb MIB", "(default: 16)"}},
  };
  for (const Daemon& daemon : daemons) {
    CommandResult help = run_command({daemon.binary, "--help"});
    EXPECT_EQ(help.exit_code, 0) << daemon.binary << help.err;
    for (const std::string& expected : daemon.expected) {
      EXPECT_NE(unwrapped(help.out).find(expected), std::string::npos) << "lacks " << expected << ":\n" << help.out;
    }
    EXPECT_EQ(help.out.find("helpfull"), std::string::npos) << help.out;
    EXPECT_EQ(help.out.find("_dir"), std::string::npos) << help.out;
    CommandResult unknown = run_command({daemon.binary, "--bogus"});
    EXPECT_EQ(unknown.exit_code, 2);
    const std::string program = fs::path(daemon.binary).filename().string();
    EXPECT_EQ(unknown.err, program + ": unknown flag --bogus; see `" + program + " --help`\n");
  }
}

TEST(CliTest, ManPagesAreGeneratedAndRender) {
  const fs::path man_dir = PESC_MAN_DIR;
  if (man_dir.empty()) GTEST_SKIP() << "help2man was not found when this build was configured";
  if (!fs::exists("/usr/bin/groff")) GTEST_SKIP() << "no groff to render man pages";
  for (const auto& [page, expected] : std::vector<std::pair<std::string, std::string>>{
           {"pesc.1", "--repetitions"}, {"pesc-coordinator.1", "--listen"}, {"pesc-worker.1", "--work-dir"}}) {
    ASSERT_TRUE(fs::exists(man_dir / page)) << man_dir / page;
    CommandResult rendered = run_command({"/usr/bin/groff", "-man", "-Tascii", "-P-cbou", (man_dir / page).string()});
    EXPECT_EQ(rendered.exit_code, 0) << page << rendered.err;
    for (const std::string& section : {std::string("NAME"), std::string("SYNOPSIS"), std::string("DESCRIPTION"),
                                       std::string("EXAMPLES"), std::string("SEE ALSO"), expected}) {
      EXPECT_NE(rendered.out.find(section), std::string::npos) << page << " lacks " << section << ":\n"
                                                                << rendered.out;
    }
  }
}

}  // namespace
}  // namespace pesc
