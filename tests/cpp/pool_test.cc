// The pool manager against stand-ins for sbatch, squeue and scancel (shell
// scripts first on PATH): what it submits, cancels and reports, and that a
// batch system refusing its submits pauses the pool. The real Slurm is
// tests/slurm/test_slurm_pool.py's.
#include "pool/pool_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "common/files.h"
#include "pool/batch_system.h"
#include "pool/pool_settings.h"
#include "pool/settings_file.h"

namespace pesc {
namespace {

namespace fs = std::filesystem;

void write_script(const fs::path& path, const std::string& text) {
  std::ofstream(path) << "#!/bin/sh\n" << text;
  fs::permissions(path, fs::perms::owner_all);
}

std::vector<std::string> lines_of(const fs::path& path) {
  auto text = read_file(path);
  if (!text.ok()) return {};
  return absl::StrSplit(*text, '\n', absl::SkipEmpty());
}

template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::seconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return predicate();
}

class PoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDirectory::create("pesc-pool-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    const fs::path bin = dir_->path() / "bin";
    fs::create_directories(bin);
    const std::string d = dir_->path().string();
    write_script(bin / "sbatch", "echo \"$@\" >> " + d + "/sbatch.args\n"
                 "if [ -f " + d + "/refuse ]; then\n"
                 "  echo 'sbatch: error: invalid partition specified: nosuch' >&2; exit 1\n"
                 "fi\n"
                 "echo 42\n");
    write_script(bin / "squeue", "cat " + d + "/queue 2>/dev/null; exit 0\n");
    write_script(bin / "scancel", "echo \"$@\" >> " + d + "/scancel.args\n");
    old_path_ = std::getenv("PATH");
    ::setenv("PATH", (bin.string() + ":" + old_path_).c_str(), 1);
  }
  void TearDown() override { ::setenv("PATH", old_path_.c_str(), 1); }

  std::unique_ptr<PoolManager> open_manager() {
    PoolHost host{.waiting_ranks = [this] { return waiting_.load(); },
                  .online_workers = [] { return std::set<std::string>(); },
                  .issue_token = [](const std::string&) -> absl::StatusOr<std::string> { return "pesc_token"; },
                  .revoke_tokens = [](const std::string&) {}};
    auto manager = PoolManager::open(dir_->path() / "state.db", dir_->path() / "pools", host);
    EXPECT_TRUE(manager.ok()) << manager.status();
    if (!manager.ok()) return nullptr;
    (*manager)->start({.coordinator_address = "10.0.0.1:7070", .worker_program = "/opt/pesc/bin/pesc-worker"});
    return std::move(*manager);
  }

  static PoolSpec spec(const std::string& name) {
    return PoolSpec{.name = name,
                    .batch_system = "slurm",
                    .partition = "debug",
                    .time_limit = std::chrono::hours(1),
                    .max_workers = 3,
                    .slots_per_worker = 2,
                    .idle_timeout = std::chrono::minutes(5),
                    .submit_args = {"--account=lab42"}};
  }

  fs::path path(const std::string& name) const { return dir_->path() / name; }

  std::optional<TempDirectory> dir_;
  std::string old_path_;
  std::atomic<int> waiting_{0};
};

TEST(BatchSystemTest, AnArgumentWithAnEmptyValueIsLeftOut) {
  EXPECT_EQ(expand_command({"sbatch", "--partition={partition}", "--array=0-{last}", "{extra}", "{script}"},
                           {{"partition", ""}, {"last", "3"}, {"script", "/p.sh"}}, {"-A", "x"}),
            (std::vector<std::string>{"sbatch", "--array=0-3", "-A", "x", "/p.sh"}));
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
}

std::string shipped_template(const std::string& name) {
  auto text = read_file(fs::path(PESC_BATCH_DIR) / name);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

TEST(BatchTemplateTest, TheShippedTemplatesParseAndTheBuiltInSlurmIsItsFile) {
  auto slurm = parse_batch_system(shipped_template("slurm.batch"), "slurm.batch");
  ASSERT_TRUE(slurm.ok()) << slurm.status();
  EXPECT_EQ(slurm->submit, slurm_batch_system().submit);
  EXPECT_EQ(slurm->status, (std::vector<std::string>{"squeue", "--noheader", "--array", "--name=pesc-{pool}",
                                                     "--format=%i %T %r"}));
  EXPECT_EQ(slurm->running_states, (std::vector<std::string>{"RUNNING", "COMPLETING"}));
  EXPECT_EQ(slurm->script, slurm_batch_system().script);
  EXPECT_EQ(slurm->script.rfind("#!/bin/sh\n", 0), 0u) << slurm->script;
  for (const char* sketch : {"pbs.batch", "htcondor.batch"}) {
    auto parsed = parse_batch_system(shipped_template(sketch), sketch);
    EXPECT_TRUE(parsed.ok()) << parsed.status();
  }
}

// A template with `line` in place of the one of its key (or added).
std::string slurm_with(const std::string& key, const std::string& line) {
  std::string text = shipped_template("slurm.batch");
  const size_t at = text.find("\n" + key + " = ");
  if (at == std::string::npos) return text + line + "\n";
  const size_t end = key == "script" ? text.find("\n\"\"\"\n", at + 1) + 4 : text.find('\n', at + 1);
  return text.substr(0, at + 1) + line + text.substr(end);
}

TEST(BatchTemplateTest, EachMistakeNamesTheFileTheLineAndWhatToChange) {
  const std::vector<std::pair<std::string, std::string>> mistakes = {
      {slurm_with("cancel", ""), "my.batch: has no \"cancel\"; add a line `cancel = ...`"},
      {slurm_with("name", "name = P B S"), "my.batch:5: \"name\" wants one word"},
      {slurm_with("cancel", "cancle = scancel {ids}"), "my.batch:15: unknown key \"cancle\"; the keys are array_id,"},
      {slurm_with("cancel", "cancel = scancel {id}"), "my.batch:15: \"cancel\" uses the unknown placeholder {id}; "
                                                      "it may use {ids}"},
      {slurm_with("cancel", "cancel = scancel"), "my.batch:15: \"cancel\" must use {ids}"},
      {slurm_with("cancel", "cancel = scancel --jobs={ids}"), "{ids} stands for several arguments"},
      {slurm_with("status", "status = squeue '--format=%i"), "my.batch:12: the quote ' at character 8"},
      {slurm_with("running_states", "running_states = "), "\"running_states\" is empty"},
      {slurm_with("script", "script = {worker}"), "the script must start {worker} with --id \"pilot-{pool}-ID\""},
      {slurm_with("script", "script = \"\"\"\nexec {worker}"), "starts a block with \"\"\" that no line"},
      {slurm_with("name", "name = slurm\nname = again"), "\"name\" is set twice (also on line 5)"},
      {slurm_with("array_id", "[pool x]"), "a batch system template has no sections"},
      {"just words\n", "my.batch:1: expected `key = value`"},
  };
  for (const auto& [text, expected] : mistakes) {
    auto parsed = parse_batch_system(text, "my.batch");
    ASSERT_FALSE(parsed.ok()) << expected;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(expected), std::string::npos) << parsed.status();
  }
}

TEST(BatchTemplateTest, APoolSectionTakesTheFlagsOfPoolAdd) {
  auto file = parse_settings(
      "[pool lab]\nbatch-system = slurm\ntime-limit = 2h\nmax-workers = 7\nsubmit-args = --account=lab42 "
      "'--comment=a b'\n[pool typo]\nbatch-system = slurm\nmax-worker = 3\n[pool none]\n[pool slow]\n"
      "batch-system = slurm\nidle-timeout = soon\n[pool far]\ntemplate = nosuch.batch\n",
      "pesc.conf");
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->sections.size(), 5u);
  auto lab = pool_spec_from_settings(file->sections[0], "/etc");
  ASSERT_TRUE(lab.ok()) << lab.status();
  EXPECT_EQ(lab->time_limit, std::chrono::hours(2));
  EXPECT_EQ(lab->max_workers, 7);
  EXPECT_EQ(lab->slots_per_worker, 1);
  EXPECT_EQ(lab->idle_timeout, std::chrono::minutes(5));
  EXPECT_EQ(lab->submit_args, (std::vector<std::string>{"--account=lab42", "--comment=a b"}));
  const std::vector<std::string> expected = {
      "pesc.conf:8: unknown key \"max-worker\"; the keys of [pool NAME] are batch-system,",
      "pesc.conf:9: [pool none] needs one of `batch-system = slurm` or `template = FILE`",
      "pesc.conf:12: \"idle-timeout\" wants a duration such as 90s, 5m or 1h, not \"soon\"",
      "pesc.conf:14: cannot read /etc/nosuch.batch"};
  for (size_t i = 0; i < expected.size(); ++i) {
    auto spec = pool_spec_from_settings(file->sections[i + 1], "/etc");
    ASSERT_FALSE(spec.ok()) << expected[i];
    EXPECT_EQ(spec.status().message().find(expected[i]), 0u) << spec.status();
  }
}

TEST_F(PoolTest, WaitingRanksSubmitOneArrayUpToTheMaximumAndShutdownCancelsIt) {
  write_file_atomically(path("queue"), "42_0 PENDING Resources\n42_1 PENDING Resources\n42_2 PENDING Resources\n")
      .IgnoreError();
  waiting_ = 10;  // five pilots' worth; the pool allows three
  auto manager = open_manager();
  ASSERT_NE(manager, nullptr);
  ASSERT_TRUE(manager->add(spec("cluster")).ok());
  ASSERT_TRUE(eventually([&] { return lines_of(path("sbatch.args")).size() == 1; }));
  const std::string submitted = lines_of(path("sbatch.args"))[0];
  for (const char* argument : {"--array=0-2", "--partition=debug", "--time=60", "--cpus-per-task=2",
                               "--account=lab42", "--job-name=pesc-cluster"}) {
    EXPECT_NE(submitted.find(argument), std::string::npos) << submitted;
  }
  ASSERT_TRUE(eventually([&] {
    auto pools = manager->list();
    return pools.size() == 1 && pools[0].pilots_pending == 3 && pools[0].pending_reason == "PENDING Resources";
  }));
  EXPECT_NE(manager->waiting_note().find("3 pilots wait in slurm"), std::string::npos) << manager->waiting_note();
  // The script runs pesc-worker with the pool's token, read-only to its owner.
  auto script = read_file(path("pools/cluster/pilot.sh"));
  ASSERT_TRUE(script.ok());
  EXPECT_NE(script->find("'/opt/pesc/bin/pesc-worker' '--coordinator' '10.0.0.1:7070' '--slots' '2'"),
            std::string::npos)
      << *script;
  EXPECT_EQ(fs::status(path("pools/cluster/join.token")).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(lines_of(path("sbatch.args")).size(), 1u) << "no more than the maximum";
  manager->shut_down();
  EXPECT_EQ(lines_of(path("scancel.args")), (std::vector<std::string>{"42_0 42_1 42_2"}));
}

TEST_F(PoolTest, RefusedSubmitsPauseThePoolWithTheBatchSystemsWords) {
  write_file_atomically(path("refuse"), "").IgnoreError();
  waiting_ = 1;
  auto manager = open_manager();
  ASSERT_NE(manager, nullptr);
  ASSERT_TRUE(manager->add(spec("bad")).ok());
  ASSERT_TRUE(eventually([&] { return !manager->list()[0].paused.empty(); }));
  const std::string paused = manager->list()[0].paused;
  EXPECT_NE(paused.find("invalid partition specified: nosuch"), std::string::npos) << paused;
  EXPECT_NE(manager->waiting_note().find("pool bad is paused"), std::string::npos);
  EXPECT_NE(manager->waiting_note().find("pesc pool resume bad"), std::string::npos);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(lines_of(path("sbatch.args")).size(), 3u) << "a paused pool submits nothing more";
}

TEST_F(PoolTest, APilotGoneBeforeItsWorkerJoinedIsAFailure) {
  waiting_ = 1;  // squeue lists nothing: the pilot died at once
  auto manager = open_manager();
  ASSERT_NE(manager, nullptr);
  ASSERT_TRUE(manager->add(spec("dying")).ok());
  ASSERT_TRUE(eventually([&] {
    return manager->list()[0].last_failure.find("pilot 42 ended before its worker joined") != std::string::npos;
  }));
}

TEST_F(PoolTest, PoolsOutliveARestartAndARemovedOneIsGone) {
  {
    auto manager = open_manager();
    ASSERT_NE(manager, nullptr);
    ASSERT_TRUE(manager->add(spec("kept")).ok());
    ASSERT_TRUE(manager->add(spec("dropped")).ok());
    EXPECT_EQ(manager->add(spec("kept")).code(), absl::StatusCode::kAlreadyExists);
    ASSERT_TRUE(manager->remove("dropped").ok());
  }
  auto manager = open_manager();
  ASSERT_NE(manager, nullptr);
  ASSERT_EQ(manager->list().size(), 1u);
  EXPECT_EQ(manager->list()[0].spec.name, "kept");
  EXPECT_EQ(manager->list()[0].spec.submit_args, std::vector<std::string>{"--account=lab42"});
}

TEST_F(PoolTest, AStoredTemplateOutlivesARestartAndABadOneIsRefusedAndNotStored) {
  PoolSpec tiny = spec("tiny");
  tiny.batch_system.clear();
  tiny.batch_template = slurm_with("name", "name = tiny");
  tiny.batch_template_file = "/home/me/tiny.batch";
  PoolSpec bad = spec("bad");
  bad.batch_system.clear();
  bad.batch_template = slurm_with("cancel", "cancel = scancel {job}");
  bad.batch_template_file = "/home/me/bad.batch";
  {
    auto manager = open_manager();
    ASSERT_NE(manager, nullptr);
    ASSERT_TRUE(manager->add(tiny).ok());
    const absl::Status refused = manager->add(bad);
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(refused.message().find("/home/me/bad.batch:15: \"cancel\" uses the unknown placeholder {job}"),
              std::string::npos)
        << refused;
  }
  auto manager = open_manager();
  ASSERT_NE(manager, nullptr);
  ASSERT_EQ(manager->list().size(), 1u);
  EXPECT_EQ(manager->list()[0].spec.batch_system, "tiny");
  EXPECT_EQ(manager->list()[0].spec.batch_template, tiny.batch_template);
  // The same spec again changes nothing; another replaces it.
  tiny.batch_system = "tiny";
  EXPECT_TRUE(manager->put(tiny).ok());
  tiny.max_workers = 9;
  EXPECT_TRUE(manager->put(tiny).ok());
  EXPECT_EQ(manager->list()[0].spec.max_workers, 9);
}

TEST_F(PoolTest, ARestartedCoordinatorTakesOverThePilotsStillListedAndCancelsThemAtShutdown) {
  {
    auto manager = open_manager();
    ASSERT_NE(manager, nullptr);
    ASSERT_TRUE(manager->add(spec("cluster")).ok());
  }
  write_file_atomically(path("queue"), "7 RUNNING None\n").IgnoreError();
  auto manager = open_manager();
  ASSERT_NE(manager, nullptr);
  ASSERT_TRUE(eventually([&] { return manager->list()[0].pilots_running == 1; }));
  manager->shut_down();
  EXPECT_EQ(lines_of(path("scancel.args")), (std::vector<std::string>{"7"}));
  EXPECT_TRUE(lines_of(path("sbatch.args")).empty()) << "no rank waited";
}

}  // namespace
}  // namespace pesc
