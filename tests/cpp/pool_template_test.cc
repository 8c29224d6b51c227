// A batch system that pesc does not know, given as a template file: a tiny
// one made of shell scripts (submit starts the job script detached in its
// own session, status lists its pid files, cancel kills), in a coordinator
// started from a config file. Real pilots (pesc-worker) start through the
// template, join, run a job's ranks and are cancelled with their pool.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "farm_harness.h"

namespace pesc::testing {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> lines_of(const std::string& text) { return absl::StrSplit(text, '\n', absl::SkipEmpty()); }

void write_file(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

// The tiny batch system's scripts, under dir/bin, keeping its jobs in dir/jobs/POOL.
void write_tiny_batch_system(const fs::path& dir) {
  const fs::path bin = dir / "bin";
  fs::create_directories(bin);
  const std::string d = dir.string();
  write_script(bin, "bs-submit", "#!/bin/sh\n"
               "# bs-submit POOL COUNT SCRIPT: COUNT copies of SCRIPT, each in its own session.\n"
               "jobs=" + d + "/jobs/$1; mkdir -p \"$jobs\"\n"
               "job=$(( $(cat " + d + "/jobs/last 2>/dev/null || echo 100) + 1 ))\n"
               "echo $job > " + d + "/jobs/last\n"
               "i=0\n"
               "while [ $i -lt \"$2\" ]; do\n"
               "  BS_JOB=$job BS_TASK=$i setsid sh -c 'echo $$ > \"$0\"; exec sh \"$1\"' \"$jobs/${job}_$i.pid\" \"$3\""
               " </dev/null >/dev/null 2>&1 &\n"
               "  echo ${job}_$i >> " + d + "/submitted\n"
               "  i=$((i + 1))\n"
               "done\n"
               "echo $job\n");
  write_script(bin, "bs-status", "#!/bin/sh\n"
               "# bs-status POOL: \"ID RUNNING\" for each live pilot of the pool.\n"
               "for f in " + d + "/jobs/$1/*.pid; do\n"
               "  [ -e \"$f\" ] || continue\n"
               "  state=$(sed 's/.*) //' /proc/$(cat \"$f\")/stat 2>/dev/null | cut -c1)\n"
               "  [ -n \"$state\" ] && [ \"$state\" != Z ] && echo \"$(basename \"$f\" .pid) RUNNING\"\n"
               "done\n"
               "exit 0\n");
  write_script(bin, "bs-cancel", "#!/bin/sh\n"
               "# bs-cancel ID...: ends each pilot's session.\n"
               "for id in \"$@\"; do\n"
               "  for f in " + d + "/jobs/*/$id.pid; do kill -TERM -$(cat \"$f\") 2>/dev/null; done\n"
               "  echo $id >> " + d + "/cancelled\n"
               "done\n");
  write_file(dir / "tiny.batch", "# A tiny batch system of shell scripts.\n"
             "name = tiny\n"
             "submit = " + (bin / "bs-submit").string() + " {pool} {count} {script}\n"
             "status = " + (bin / "bs-status").string() + " {pool}\n"
             "cancel = " + (bin / "bs-cancel").string() + " {ids}\n"
             "single_id = {job}_0\n"
             "array_id = {job}_{index}\n"
             "running_states = RUNNING\n"
             "script = \"\"\"\n"
             "#!/bin/sh\n"
             "PILOT_ID=\"${BS_JOB}_${BS_TASK}\"\n"
             "exec >{log_dir}/\"pilot-$PILOT_ID.out\" 2>&1\n"
             "{worker} --id \"pilot-{pool}-$PILOT_ID\" --work-dir \"" + d + "/work-$PILOT_ID\"\n"
             "\"\"\"\n");
}

std::vector<pid_t> pilot_pids(const fs::path& dir) {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "jobs")) {
    int pid = 0;
    if (entry.path().extension() == ".pid" && absl::SimpleAtoi(read_all(entry.path()), &pid)) pids.push_back(pid);
  }
  return pids;
}

// Kills what is left of the pilots when a test fails halfway: they run in
// sessions of their own, which no daemon's end takes down.
struct PilotReaper {
  fs::path dir;
  ~PilotReaper() {
    std::error_code missing;
    if (!fs::exists(dir / "jobs", missing)) return;
    for (pid_t pid : pilot_pids(dir)) ::kill(-pid, SIGKILL);
  }
};

TEST(PoolTemplateTest, PilotsOfATemplateFromAConfigFileRunEveryRankOnceInOrderAndAreCancelledWithTheirPool) {
  ScratchDir scratch;
  const fs::path dir = scratch.path();
  write_tiny_batch_system(dir);
  PilotReaper reaper{dir};
  write_file(dir / "pesc.conf", "# The command line's --listen wins over this.\n"
             "listen = 127.0.0.1:1\n"
             "worker-lease-ms = 3000\n"
             "\n[pool tiny]\n"
             "template = tiny.batch\n"
             "max-workers = 2\n"
             "slots-per-worker = 2\n"
             "time-limit = 10m\n"
             "idle-timeout = 5m\n"
             "worker-args = --no-sandbox --run-as=\n");
  TestFarm farm(0, 2, {"--config", (dir / "pesc.conf").string()});
  EXPECT_NE(farm.address(), "127.0.0.1:1");
  const std::vector<std::string> env = {"PESC_COORDINATOR=" + farm.address()};

  CommandResult listed = run_command({PESC_CLI_BINARY, "pool", "list"}, env);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(std::regex_search(listed.out, std::regex("\ntiny +tiny "))) << listed.out;

  write_file(dir / "rank.sh", "echo \"rank $PESC_RANK pilot ${BS_JOB:-none}_${BS_TASK:-none} at $(date +%s.%N)\"\n"
             "echo $PESC_RANK >> " + (dir / "ran").string() + "\n"
             "sleep 0.2\n");
  const auto run_started = std::chrono::system_clock::now();
  CommandResult run = run_command({PESC_CLI_BINARY, "run", "--repetitions", "10", (dir / "rank.sh").string()}, env);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err << read_all(farm.dir() / "coordinator.log");
  const std::vector<std::string> lines = lines_of(run.out);
  ASSERT_EQ(lines.size(), 10u) << run.out;
  const std::set<std::string> submitted_pilots = [&] {
    auto ids = lines_of(read_all(dir / "submitted"));
    return std::set<std::string>(ids.begin(), ids.end());
  }();
  double first_start = 1e300;
  for (size_t rank = 0; rank < lines.size(); ++rank) {
    std::smatch found;
    ASSERT_TRUE(std::regex_match(lines[rank], found, std::regex("rank (\\d+) pilot (\\S+) at ([\\d.]+)")))
        << lines[rank];
    EXPECT_EQ(found[1], std::to_string(rank)) << "out of order: " << run.out;
    EXPECT_TRUE(submitted_pilots.contains(found[2])) << "rank " << rank << " ran outside a pilot: " << lines[rank];
    first_start = std::min(first_start, std::stod(found[3]));
  }
  std::cout << "FIGURE submit to the first rank on a pilot: "
            << first_start - std::chrono::duration<double>(run_started.time_since_epoch()).count() << " s; pilots "
            << submitted_pilots.size() << std::endl;
  std::vector<int> ran;
  for (const std::string& line : lines_of(read_all(dir / "ran"))) ran.push_back(std::stoi(line));
  std::sort(ran.begin(), ran.end());
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})) << "each rank once";
  EXPECT_GE(submitted_pilots.size(), 1u);
  EXPECT_LE(submitted_pilots.size(), 2u) << "no more than max-workers";
  CommandResult workers = run_command({PESC_CLI_BINARY, "workers"}, env);
  EXPECT_NE(workers.out.find("pilot-tiny-"), std::string::npos) << workers.out;

  // A template with a mistake is refused at `pool add`, naming its file and line.
  write_file(dir / "typo.batch", std::string(read_all(dir / "tiny.batch")).replace(
                                     read_all(dir / "tiny.batch").find("{ids}"), 5, "{id}"));
  CommandResult refused = run_command(
      {PESC_CLI_BINARY, "pool", "add", "other", "--template", (dir / "typo.batch").string()}, env);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find((dir / "typo.batch").string() + ":5: \"cancel\" uses the unknown placeholder {id}"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(run_command({PESC_CLI_BINARY, "pool", "list"}, env).out.find("other"), std::string::npos);

  // A pool added by `pesc pool add --template` keeps the template's text: a
  // restarted coordinator has it without the file. The config's pool, the
  // same as before, takes over its pilots still running (none submitted
  // since the restart).
  fs::copy_file(dir / "tiny.batch", dir / "added.batch");
  ASSERT_EQ(run_command({PESC_CLI_BINARY, "pool", "add", "added", "--template", (dir / "added.batch").string(),
                         "--worker-arg=--no-sandbox", "--worker-arg=--run-as="},
                        env)
                .exit_code,
            0);
  fs::remove(dir / "added.batch");
  farm.restart_coordinator();
  listed = run_command({PESC_CLI_BINARY, "pool", "list"}, env);
  EXPECT_TRUE(std::regex_search(listed.out, std::regex("\nadded +tiny "))) << listed.out;
  const std::regex taken_over(absl::StrCat("\ntiny +tiny +\\S+ +2 +0 +", submitted_pilots.size(), " +0 +active"));
  EXPECT_TRUE(eventually(
      [&] { return std::regex_search(run_command({PESC_CLI_BINARY, "pool", "list"}, env).out, taken_over); }))
      << run_command({PESC_CLI_BINARY, "pool", "list"}, env).out;
  EXPECT_EQ(run_command({PESC_CLI_BINARY, "pool", "remove", "added"}, env).exit_code, 0);

  // Removing the pool cancels its pilots through the template.
  CommandResult removed = run_command({PESC_CLI_BINARY, "pool", "remove", "tiny"}, env);
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_NE(removed.out.find(absl::StrCat("cancelled ", submitted_pilots.size(), " pilots")), std::string::npos)
      << removed.out;
  auto cancelled = lines_of(read_all(dir / "cancelled"));
  EXPECT_EQ(std::set<std::string>(cancelled.begin(), cancelled.end()), submitted_pilots);
  const std::vector<pid_t> pids = pilot_pids(dir);
  EXPECT_EQ(pids.size(), submitted_pilots.size());
  EXPECT_TRUE(eventually([&] { return std::all_of(pids.begin(), pids.end(), process_gone); },
                         std::chrono::seconds(30)))
      << "a pilot outlived its cancel";
}

TEST(PoolTemplateTest, AConfigFileWithAMistakeStopsTheCoordinatorBeforeItStartsAndSaysWhatToChange) {
  ScratchDir scratch;
  const fs::path dir = scratch.path();
  write_tiny_batch_system(dir);
  const std::vector<std::pair<std::string, std::string>> mistakes = {
      {"listen = 127.0.0.1:0\nlisen = 0.0.0.0:7070\n", ":2: unknown key \"lisen\"; the keys are "},
      {"worker-lease-ms = soon\n", ":1: \"worker-lease-ms = soon\": "},
      {"[pool lab]\nbatch-system = slurm\nmax-worker = 3\n", ":3: unknown key \"max-worker\"; the keys of [pool NAME]"},
      {"[pool lab]\nbatch-system = pbs\n", ":1: [pool lab]: no built-in batch system \"pbs\""},
      {"[pool lab]\ntemplate = nosuch.batch\n", ":2: cannot read " + (dir / "nosuch.batch").string()},
      {"[pol lab]\n", ":1: unknown section [pol lab]; the only sections are [pool NAME]"},
  };
  for (size_t i = 0; i < mistakes.size(); ++i) {
    const fs::path config = dir / absl::StrCat("mistake", i, ".conf");
    write_file(config, mistakes[i].first);
    CommandResult started = run_command({PESC_COORDINATOR_BINARY, "--config", config.string(), "--state-dir",
                                         (dir / "state").string()});
    EXPECT_EQ(started.exit_code, 2) << mistakes[i].first << started.err;
    EXPECT_NE(started.err.find(config.string() + mistakes[i].second), std::string::npos)
        << mistakes[i].first << started.err;
    EXPECT_FALSE(fs::exists(dir / "state" / "coordinator.address")) << "it started";
  }
}

}  // namespace
}  // namespace pesc::testing
