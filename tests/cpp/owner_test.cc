// Owners first on real daemons. Files stand in for the hardware: a
// /proc/stat whose counters a thread of the test advances (a host busy with
// other work, or quiet), and an input device whose access time says when
// someone last touched the keyboard.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utmp.h>

#include <atomic>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/strings/str_split.h"
#include "farm_harness.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pesc/pesc.h"
#include "worker/host_load.h"
#include "worker/owner_policy.h"
#include "worker/owner_presence.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::ScratchDir;
using testing::TestFarm;
using testing::eventually;
using testing::read_all;
using testing::run_command;
using testing::write_script;

// A /proc/stat whose "cpu" line advances, every 20 ms, by 100 ticks of
// which `busy_percent` are busy.
class FakeProcStat {
 public:
  FakeProcStat(fs::path path, int busy_percent) : path_(std::move(path)), busy_percent_(busy_percent) {
    write();
    thread_ = std::thread([this] {
      while (!stop_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        write();
      }
    });
  }
  ~FakeProcStat() {
    stop_ = true;
    thread_.join();
  }
  const fs::path& path() const { return path_; }
  void set_busy_percent(int percent) { busy_percent_ = percent; }

 private:
  void write() {
    ticks_ += 100;
    busy_ += busy_percent_;
    const fs::path next = path_.string() + ".next";
    std::ofstream(next) << "cpu  " << busy_ << " 0 0 " << ticks_ - busy_ << " 0 0 0 0 0 0\n";
    fs::rename(next, path_);
  }
  const fs::path path_;
  std::atomic<int> busy_percent_;
  int64_t ticks_ = 0;
  int64_t busy_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Sets when the file was last read, as the kernel does on input.
void used_ago(const fs::path& device, std::chrono::seconds ago) {
  const auto when = std::chrono::system_clock::now() - ago;
  const auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
  struct timespec times[2] = {{since_epoch / 1'000'000'000, since_epoch % 1'000'000'000}, {0, UTIME_OMIT}};
  ASSERT_EQ(::utimensat(AT_FDCWD, device.c_str(), times, 0), 0);
}

TEST(OwnerPolicyTest, ReadsKeyValueLinesAndSaysWhereItStumbles) {
  auto policy = parse_owner_policy("# a lab desktop\ncpu_threshold = 50  # percent\n\nowner_share=5\n"
                                   "owner_idle_seconds = 30\ninput_dirs = /a, /b\n");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->cpu_threshold, 50);
  EXPECT_EQ(policy->owner_share, 5);
  EXPECT_EQ(policy->owner_idle, std::chrono::seconds(30));
  EXPECT_EQ(policy->input_dirs, (std::vector<fs::path>{"/a", "/b"}));
  EXPECT_EQ(policy->utmp, "/var/run/utmp") << "a key left out keeps its default";
  EXPECT_EQ(parse_owner_policy("cpu_threshold = 50\ncpu_treshold = 5\n").status().message(),
            "line 2: unknown setting \"cpu_treshold\"");
  EXPECT_FALSE(parse_owner_policy("owner_share = 150\n").ok());
  EXPECT_FALSE(parse_owner_policy("owner_share\n").ok());
}

// A /proc/stat whose "cpu" line has these busy and idle ticks.
void write_stat(const fs::path& proc_stat, int64_t busy, int64_t idle) {
  std::ofstream(proc_stat) << "cpu " << busy << " 0 0 " << idle << " 0 0 0 0 0 0\n";
}

// A worker running short ranks must not take their CPU for someone else's:
// a rank that ended between two samples is still the worker's.
TEST(HostLoadTest, RanksThatEndedBetweenSamplesAreNotOtherWork) {
  ScratchDir scratch;
  const fs::path proc_stat = scratch.path() / "stat";
  write_stat(proc_stat, 1000, 1000);
  HostLoad load(proc_stat);
  ASSERT_FALSE(load.sample({}).has_value()) << "the first sample only starts the count";
  const pid_t child = ::fork();
  if (child == 0) {  // a short rank: 300 ms of CPU (however long a loaded host takes to give them), then gone
    timespec used = {};
    while (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used) == 0 && used.tv_sec * 1000 + used.tv_nsec / 1000000 < 300) {
    }
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);
  const int64_t child_ticks = ::sysconf(_SC_CLK_TCK) * 3 / 10;
  write_stat(proc_stat, 1000 + child_ticks, 1000 + child_ticks);  // the host was half busy, with the rank alone
  std::optional<double> others = load.sample({});
  ASSERT_TRUE(others.has_value());
  EXPECT_LT(*others, 10.0) << "the ended rank's CPU was taken for another user's";
}

// What a heartbeat tells of the host: all its CPU use, ranks and all.
TEST(HostCpuTest, TheBusyShareBetweenTwoSamples) {
  ScratchDir scratch;
  const fs::path proc_stat = scratch.path() / "stat";
  write_stat(proc_stat, 1000, 1000);
  HostCpu cpu(proc_stat);
  ASSERT_FALSE(cpu.sample().has_value()) << "the first sample only starts the count";
  write_stat(proc_stat, 1300, 1100);
  std::optional<double> busy = cpu.sample();
  ASSERT_TRUE(busy.has_value());
  EXPECT_DOUBLE_EQ(*busy, 75.0);
  fs::remove(proc_stat);
  EXPECT_FALSE(cpu.sample().has_value()) << "an unreadable /proc/stat is no figure";
}

TEST(OwnerPresenceTest, ALoggedInPersonIsPresentWhileTheirTerminalIsInUse) {
  ScratchDir scratch;
  OwnerPolicy policy;
  policy.utmp = scratch.path() / "utmp";
  policy.dev_dir = scratch.path() / "dev";
  policy.input_dirs = {};
  policy.owner_idle = std::chrono::seconds(60);
  EXPECT_EQ(owner_presence(policy, absl::Now()), "") << "no utmp: nobody";
  struct utmp record = {};
  record.ut_type = USER_PROCESS;
  std::strncpy(record.ut_user, "ana", sizeof record.ut_user);
  std::strncpy(record.ut_line, "pts/7", sizeof record.ut_line);
  std::ofstream(policy.utmp, std::ios::binary).write(reinterpret_cast<const char*>(&record), sizeof record);
  EXPECT_EQ(owner_presence(policy, absl::Now()), "ana is logged in") << "no terminal to look at";
  fs::create_directories(policy.dev_dir / "pts");
  std::ofstream(policy.dev_dir / "pts" / "7").put('\n');
  used_ago(policy.dev_dir / "pts" / "7", std::chrono::seconds(0));
  EXPECT_EQ(owner_presence(policy, absl::Now()), "ana's terminal pts/7 used 0 s ago");
  used_ago(policy.dev_dir / "pts" / "7", std::chrono::seconds(600));
  EXPECT_EQ(owner_presence(policy, absl::Now()), "") << "logged in but idle";
}

class OwnerTest : public ::testing::Test {
 protected:
  OwnerTest() : farm_(0) { fs::create_directories(input_dir()); }

  fs::path input_dir() const { return scratch_.path() / "input"; }

  // A worker that owners first, with settings in its own file.
  fs::path add_worker(const FakeProcStat& host, const std::string& settings) {
    const fs::path config = scratch_.path() / ("worker" + std::to_string(workers_++) + ".conf");
    write_config(config, host, settings);
    farm_.add_worker(1, {"--owners-first", "--config", config.string()});
    return config;
  }

  void write_config(const fs::path& config, const FakeProcStat& host, const std::string& settings) {
    std::ofstream(config) << "# owners first, measured from stand-ins\n"
                          << "proc_stat = " << host.path().string() << "\n"
                          << "utmp = " << (scratch_.path() / "no-utmp").string() << "\n"
                          << "input_dirs = " << input_dir().string() << "\n"
                          << "check_seconds = 0.2\n"
                          << settings;
  }

  std::string workers() {
    return run_command({PESC_CLI_BINARY, "--coordinator", farm_.address(), "workers"}, {}).out;
  }

  ScratchDir scratch_;
  TestFarm farm_;
  int workers_ = 0;
};

TEST_F(OwnerTest, ABusyHostTakesNoRanksAndItsSettingsChangeWithoutARestart) {
  FakeProcStat busy(scratch_.path() / "busy-stat", 90);
  FakeProcStat quiet(scratch_.path() / "quiet-stat", 5);
  const fs::path busy_config = add_worker(busy, "");
  add_worker(quiet, "");
  ASSERT_TRUE(eventually([&] {
    const std::string out = workers();
    return out.find("worker0") != std::string::npos && out.find("worker1") != std::string::npos;
  })) << workers();
  const std::string listed = workers();
  EXPECT_NE(listed.find("takes no new ranks: the host's CPU was 90% busy with other work (over 70%)"),
            std::string::npos)
      << listed;

  fs::path script = write_script(scratch_.path(), "rank.sh", "sleep 0.1\necho \"rank $PESC_RANK\"\n");
  Farm client("shell", {.coordinator = farm_.address()});
  Results results = client.map(script, 6).wait();
  for (const RankResult& rank : results) {
    EXPECT_TRUE(rank.ok()) << rank.output;
    EXPECT_EQ(rank.worker, "worker1") << "worker0's host is busy";
  }

  // Raised without a restart: the worker reads its file again.
  write_config(busy_config, busy, "cpu_threshold = 95\n");
  ASSERT_TRUE(eventually([&] { return workers().find("takes no new ranks") == std::string::npos; })) << workers();
  std::map<std::string, int> per_worker;
  for (const RankResult& rank : client.map(script, 8).wait()) per_worker[rank.worker] += 1;
  EXPECT_GT(per_worker["worker0"], 0) << "worker0 takes ranks again";

  // Lowered again, but the file keeps its time: only SIGHUP makes the worker look.
  const auto written = fs::last_write_time(busy_config);
  write_config(busy_config, busy, "cpu_threshold = 50\n");
  fs::last_write_time(busy_config, written);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(workers().find("takes no new ranks"), std::string::npos) << "not read again yet";
  farm_.worker(0).kill(SIGHUP);
  EXPECT_TRUE(eventually([&] { return workers().find("busy with other work (over 50%)") != std::string::npos; }))
      << workers();
}

// A busy desktop's load moves with every sample; the job waits for the same
// reason all along, so the CLI says why once (issue 14: 34 times).
TEST_F(OwnerTest, AJobWaitingOnAPausedWorkerSaysWhyOnceWhileTheLoadMoves) {
  FakeProcStat busy(scratch_.path() / "stat", 85);
  add_worker(busy, "");
  ASSERT_TRUE(eventually([&] { return workers().find("takes no new ranks") != std::string::npos; })) << workers();
  fs::path script = write_script(scratch_.path(), "rank.sh", "echo \"rank $PESC_RANK\"\n");
  CommandResult run;
  std::thread cli([&] {
    run = run_command({PESC_CLI_BINARY, "--coordinator", farm_.address(), "run", "--repetitions", "2", script.string()});
  });
  for (int percent = 80; percent <= 98; percent += 2) {  // past the coordinator's grace, figures changing
    busy.set_busy_percent(percent);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  busy.set_busy_percent(5);
  cli.join();
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "rank 0\nrank 1\n");
  size_t said = 0;
  for (size_t at = run.err.find("the ranks wait:"); at != std::string::npos; at = run.err.find("the ranks wait:", at + 1)) {
    ++said;
  }
  EXPECT_EQ(said, 1u) << run.err;
  EXPECT_NE(run.err.find("worker0 is paused: the host's CPU was 8"), std::string::npos) << run.err;
}

TEST_F(OwnerTest, AHostTurningBusyGivesBackTheRanksWaitingThere) {
  FakeProcStat turning(scratch_.path() / "turning-stat", 5);
  FakeProcStat quiet(scratch_.path() / "quiet-stat", 5);
  add_worker(turning, "");
  add_worker(quiet, "");
  ASSERT_TRUE(eventually([&] {
    const std::string out = workers();
    return out.find("worker0") != std::string::npos && out.find("worker1") != std::string::npos;
  })) << workers();
  const fs::path started = scratch_.path() / "started";
  fs::create_directories(started);
  fs::path script =
      write_script(scratch_.path(), "long.sh", "touch \"$PESC_PARAMETER_0/$PESC_RANK\"\nsleep 1.5\necho done\n");
  Farm client("shell", {.coordinator = farm_.address()});
  // One slot each: one rank runs on each worker and one waits behind it.
  Job job = client.map(script, 4, {started.string()});
  ASSERT_TRUE(eventually(
      [&] { return std::distance(fs::directory_iterator(started), fs::directory_iterator()) == 2; }));
  turning.set_busy_percent(95);
  std::map<std::string, int> per_worker;
  for (const RankResult& rank : job.wait()) {
    EXPECT_TRUE(rank.ok()) << rank.output;
    per_worker[rank.worker] += 1;
  }
  EXPECT_EQ(per_worker["worker0"], 1) << "only the rank it had started";
  EXPECT_EQ(per_worker["worker1"], 3);
}

// The coordinator keeps when a worker paused; the job's report shows that
// stretch as paused, not as idle slots (dispatch, staging), and so does the
// timeline (issue 14).
TEST_F(OwnerTest, AJobsReportShowsTheStretchItsWorkerWasPaused) {
  FakeProcStat host(scratch_.path() / "stat", 5);
  add_worker(host, "");
  ASSERT_TRUE(eventually([&] { return workers().find("worker0") != std::string::npos; })) << workers();
  const fs::path started = scratch_.path() / "started";
  fs::create_directories(started);
  fs::path script =
      write_script(scratch_.path(), "rank.sh", "touch \"$PESC_PARAMETER_0/$PESC_RANK\"\nsleep 0.2\necho done\n");
  Farm client("shell", {.coordinator = farm_.address()});
  Job job = client.map(script, 6, {started.string()});
  ASSERT_TRUE(eventually(
      [&] { return std::distance(fs::directory_iterator(started), fs::directory_iterator()) >= 2; }));
  constexpr auto kPause = std::chrono::milliseconds(2500);
  host.set_busy_percent(95);
  ASSERT_TRUE(eventually([&] { return workers().find("takes no new ranks") != std::string::npos; })) << workers();
  const auto paused_at = std::chrono::steady_clock::now();
  std::this_thread::sleep_until(paused_at + kPause);
  host.set_busy_percent(5);
  Results results = job.wait();
  for (const RankResult& rank : results) EXPECT_TRUE(rank.ok()) << rank.output;

  const JobReport report = results.report();
  std::cout << report.to_text();  // the figures, for whoever reads the log
  // The worker's check (0.2 s) and a heartbeat at either end, on a busy machine.
  EXPECT_NEAR(std::chrono::duration<double>(report.paused).count(), 2.5, 0.8) << report.to_text();
  EXPECT_GE(report.lost_paused, std::chrono::milliseconds(1700)) << report.to_text();
  EXPECT_LT(report.lost_between_ranks, std::chrono::milliseconds(1500)) << report.to_text();
  ASSERT_EQ(report.paused_reasons.size(), 1u);
  // The worker's sample may straddle the change from 5 to 95 %: the figure
  // is whatever it read over 70 %.
  EXPECT_THAT(report.paused_reasons[0], ::testing::ContainsRegex("the host's CPU was [0-9]+% busy"));
  EXPECT_NE(report.timeline_svg().find("<rect class=\"paused\""), std::string::npos);

  const CommandResult cli =
      run_command({PESC_CLI_BINARY, "--coordinator", farm_.address(), "report", results.job_id()}, {});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_THAT(cli.out, ::testing::ContainsRegex("% of the wall time a worker took no ranks \\(the host's CPU was [0-9]+% busy"));
}

// CPU ticks the process has used, from /proc/PID/stat.
int64_t cpu_ticks(pid_t pid) {
  const std::string stat = read_all("/proc/" + std::to_string(pid) + "/stat");
  std::vector<std::string> fields = absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ');
  int64_t user = 0, system = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &user) || !absl::SimpleAtoi(fields[12], &system)) return -1;
  return user + system;
}

// Share of one CPU the process gets over `span`.
double cpu_share(pid_t pid, std::chrono::milliseconds span) {
  const int64_t before = cpu_ticks(pid);
  const auto started = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(span);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return static_cast<double>(cpu_ticks(pid) - before) / static_cast<double>(::sysconf(_SC_CLK_TCK)) / seconds;
}

// Was the process seen stopped (SIGSTOP) in `span`?
bool seen_stopped(pid_t pid, std::chrono::milliseconds span) {
  const auto until = std::chrono::steady_clock::now() + span;
  while (std::chrono::steady_clock::now() < until) {
    const std::string stat = read_all("/proc/" + std::to_string(pid) + "/stat");
    if (stat.size() > stat.rfind(')') + 2 && stat[stat.rfind(')') + 2] == 'T') return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

TEST_F(OwnerTest, SomeoneAtTheMachineThrottlesRunningRanksUntilTheyLeave) {
  FakeProcStat quiet(scratch_.path() / "stat", 5);
  const fs::path keyboard = input_dir() / "event0";
  std::ofstream(keyboard).put('\n');
  used_ago(keyboard, std::chrono::hours(1));
  add_worker(quiet, "owner_idle_seconds = 3\nowner_share = 10\n");

  // Spins until told to stop, so its CPU share shows how much it may run.
  const fs::path pid_file = scratch_.path() / "pid";
  const fs::path stop_file = scratch_.path() / "stop";
  fs::path script = write_script(scratch_.path(), "spin.sh",
                                 "pid_file=$PESC_PARAMETER_0 stop_file=$PESC_PARAMETER_1\n"
                                 "echo $$ > \"$pid_file.tmp\" && mv \"$pid_file.tmp\" \"$pid_file\"\n"
                                 "while [ ! -e \"$stop_file\" ]; do :; done\necho done\n");
  Farm client("shell", {.coordinator = farm_.address()});
  Job job = client.map(script, 1, {pid_file.string(), stop_file.string()});
  ASSERT_TRUE(eventually([&] { return !read_all(pid_file).empty(); }, std::chrono::seconds(20)));
  const pid_t rank = static_cast<pid_t>(std::stol(read_all(pid_file)));

  const double free_share = cpu_share(rank, std::chrono::milliseconds(1500));
  used_ago(keyboard, std::chrono::seconds(0));  // someone types
  ASSERT_TRUE(eventually([&] { return workers().find("ranks held back: input device event0 used") !=
                                      std::string::npos; }))
      << workers();
  const double throttled_share = cpu_share(rank, std::chrono::milliseconds(1500));
  EXPECT_TRUE(seen_stopped(rank, std::chrono::milliseconds(500))) << "stopped part of the time";
  std::cout << "rank's share of a CPU: " << free_share << " free, " << throttled_share << " throttled to 10%\n";
  EXPECT_LT(throttled_share, 0.2);
  EXPECT_GT(free_share, 2 * throttled_share);

  used_ago(keyboard, std::chrono::hours(1));  // they left
  ASSERT_TRUE(eventually([&] { return workers().find("ranks held back") == std::string::npos; })) << workers();
  EXPECT_GT(cpu_share(rank, std::chrono::milliseconds(1000)), 2 * throttled_share) << "runs freely again";
  std::ofstream(stop_file).put('\n');
  Results results = job.wait();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok()) << results[0].output;
  EXPECT_EQ(results[0].output, "done\n");
}

}  // namespace
}  // namespace pesc
